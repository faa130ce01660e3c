"""``mqsentry conform``: run the ported conformance suite against a kernel and count the results.

Linux counterpart: none (Linux is the specification the suite encodes). gVisor counterpart:
test/syscalls (its ``syscall_test`` runner runs the same binaries natively and under runsc); here the
suite is this project's target-parametrized pytest tests (testsuite/, ported from gVisor's mq.cc,
msgqueue.cc and Linux's rules), run with pytest and xdist underneath.

``--target native`` runs them against the kernel this command runs on, whatever it is (Linux, or
gVisor under ``runsc do``: the native target falls back to portable methods where that kernel lacks
a /proc file or cross-process memory writes, see testsuite/targets/native_portable.py);
``--target sentry`` runs them against the embedded sentry. The run ends with the line
``N passed, M failed, K skipped``. ``--json FILE`` writes every test's outcome.

``--gvisor-table FILE`` regenerates docs/gvisor-conformance.md: it runs this command under
``runsc --rootless=false --network=none do`` (the sandbox sees the host's root filesystem, so the
installed package is visible inside) and writes the table of the tests gVisor fails or skips.
"""

from __future__ import annotations

import argparse
import errno as errno_mod
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = ("native", "sentry")
#: The line before the JSON document that ``--json -`` prints.
JSON_MARKER = "=== mqsentry conform json ==="
JSON_END = "=== mqsentry conform json end ==="


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "conform", help="run the conformance suite against this kernel (native) or the sentry",
        description="Run the ported conformance suite (every target-parametrized test) with pytest and "
        "xdist, and print 'N passed, M failed, K skipped'.")
    p.add_argument("--target", choices=TARGETS, default="native",
                   help="native: the kernel this runs on (Linux, gVisor, ...); sentry: the embedded kernel")
    p.add_argument("-n", "--workers", dest="workers", default="auto",
                   help="pytest-xdist workers (a number, 'auto', or 0 for none; default auto)")
    p.add_argument("--json", metavar="FILE", help="write each test's outcome to FILE as JSON ('-': to stdout, one "
                   "line after a marker line, before the summary; what --gvisor-table reads, since a sandbox's "
                   "writes stay in its overlay)")
    p.add_argument("-k", dest="keyword", help="only tests matching this pytest -k expression")
    p.add_argument("--gvisor-table", metavar="FILE",
                   help="run the native suite under runsc (gVisor) and write the table of what it fails to "
                   "FILE (markdown); needs root and runsc")
    p.add_argument("--runsc", default="runsc", help="the runsc binary for --gvisor-table (default: runsc)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary line")
    return p


class _Collector:
    """A pytest plugin (in the controlling process) that records each test's outcome."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.results: dict[str, dict[str, str]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        nid = report.nodeid
        prev = self.results.get(nid)
        if prev is not None and prev["outcome"] in ("failed", "skipped"):
            return  # the first failure or skip of a test decides it
        if report.failed:
            self.results[nid] = {"outcome": "failed", "phase": report.when, "reason": _reason(report)}
        elif report.skipped:
            self.results[nid] = {"outcome": "skipped", "phase": report.when, "reason": _reason(report)}
        elif report.when == "call":
            self.results[nid] = {"outcome": "passed", "phase": "call", "reason": ""}

    def counts(self) -> tuple[int, int, int]:
        out = [r["outcome"] for r in self.results.values()]
        return out.count("passed"), out.count("failed"), out.count("skipped")


def _reason(report: Any) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:  # a skip: (file, line, reason)
        return str(lr[2]).removeprefix("Skipped: ")
    crash = getattr(lr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0][:300] if crash.message else ""
    return str(lr).strip().splitlines()[-1][:300] if lr else ""


def _testsuite_dir() -> str:
    # Located, not imported: the library does not import the test suite (import-linter), pytest does.
    spec = importlib.util.find_spec("mqsentry.testsuite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mqsentry conform: the test suite (mqsentry.testsuite) is not installed")
    return os.path.abspath(next(iter(spec.submodule_search_locations)))


def kernel_id() -> str:
    u = platform.uname()
    return f"{u.system} {u.release} {u.version} ({u.machine})"


def run_suite(target: str, workers: str, keyword: str | None, quiet: bool) -> tuple[int, _Collector, float]:
    import pytest

    suite = _testsuite_dir()
    args = [suite, "--rootdir", suite, "-p", "no:cacheprovider", "--import-mode=importlib", "--target", target,
            "-o", "addopts=", "-o", "python_files=test_*.py", "-qq" if quiet else "-q", "-rN" if quiet else "-rfE",
            "--no-header", "-p", "mqsentry.tools.conform_select"]
    if workers not in ("0", ""):
        args += ["-n", workers]
    if keyword:
        args += ["-k", keyword]
    col = _Collector(target)
    started = time.monotonic()
    code = pytest.main(args, plugins=[col])
    return int(code), col, time.monotonic() - started


def run(args: argparse.Namespace) -> int:
    if args.gvisor_table:
        return _gvisor_table(args)
    code, col, took = run_suite(args.target, str(args.workers), args.keyword, args.quiet)
    passed, failed, skipped = col.counts()
    if args.json:
        doc = {"target": args.target, "kernel": kernel_id(), "passed": passed, "failed": failed,
               "skipped": skipped, "seconds": round(took, 1),
               "tests": [{"id": k, **v} for k, v in sorted(col.results.items())]}
        if args.json == "-":
            # One short line per test: a sandbox's console may cut very long lines.
            print(JSON_MARKER)
            print(json.dumps({k: v for k, v in doc.items() if k != "tests"}))
            for t in doc["tests"]:
                print(json.dumps(t))
            print(JSON_END)
        else:
            Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if code not in (0, 1, 5):  # 5: nothing collected; 2/3/4: interrupted, internal or usage error
        return code
    return 1 if failed else 0


def parse_json_lines(lines: list[str]) -> dict[str, Any]:
    """The document ``--json -`` printed among ``lines`` of output."""
    start = lines.index(JSON_MARKER)
    end = lines.index(JSON_END, start)
    doc: dict[str, Any] = json.loads(lines[start + 1])
    doc["tests"] = [json.loads(line) for line in lines[start + 2:end]]
    return doc


# -- the gVisor table ------------------------------------------------------------------------------------

def _gvisor_table(args: argparse.Namespace) -> int:
    # runsc do gives the sandbox the host's root read-only under a tmpfs overlay: files written inside
    # stay inside, so the results come back on stdout.
    cmd = [args.runsc, "--rootless=false", "--network=none", "do", sys.executable, "-m", "mqsentry", "conform",
           "--target", "native", "-n", str(args.workers), "--json", "-", "-q"]
    if args.keyword:
        cmd += ["-k", args.keyword]
    print("running: " + " ".join(cmd), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mqsentry-conform-") as tmp:
        proc = subprocess.run(cmd, cwd=tmp, check=False, stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.splitlines()
    if JSON_MARKER not in lines:
        sys.stderr.write(proc.stdout[-4000:])
        print(f"mqsentry conform: the run under runsc produced no results (exit {proc.returncode})", file=sys.stderr)
        return 2
    doc = parse_json_lines(lines)
    runsc_version = subprocess.run([args.runsc, "--version"], capture_output=True, text=True,
                                   check=False).stdout.splitlines()
    Path(args.gvisor_table).write_text(render_table(doc, runsc_version[0] if runsc_version else "runsc"))
    print(f"{doc['passed']} passed, {doc['failed']} failed, {doc['skipped']} skipped")
    print(f"wrote {args.gvisor_table}", file=sys.stderr)
    return 0


def _area(nid: str) -> str:
    parts = nid.split("::")[0].split("/")
    return "/".join(parts[-2:]).removesuffix(".py")


_ENOSYS = re.compile(r"(\w+): ENOSYS|LinuxError\(38, '(\w+)'\)")
_PROC = re.compile(r"(read|write) (/proc/\S+): \[Errno (\d+)\]")


def _cause(t: dict[str, str]) -> str:
    """A short cause for one failed or skipped test (the gVisor table's summary)."""
    reason = t["reason"]
    if t["outcome"] == "skipped":
        return f"skipped: {reason[:80]}"
    m = _ENOSYS.search(reason)
    if m:
        return f"`{m.group(1) or m.group(2)}` is not implemented (ENOSYS)"
    m = _PROC.search(reason)
    if m:
        err = errno_mod.errorcode.get(int(m.group(3)), m.group(3))
        return f"{m.group(1)} of `{m.group(2)}` fails ({err})"
    return f"different result: {_area(t['id'])}"


def render_table(doc: dict[str, Any], runsc_version: str) -> str:
    """The markdown page of what gVisor fails and skips (docs/gvisor-conformance.md)."""
    tests = doc["tests"]
    bad = [t for t in tests if t["outcome"] != "passed"]
    by_area: dict[str, list[int]] = {}
    for t in tests:
        c = by_area.setdefault(_area(t["id"]), [0, 0, 0])
        c[("passed", "failed", "skipped").index(t["outcome"])] += 1
    lines = [
        "# What gVisor fails in the mqsentry conformance suite",
        "",
        "Generated by `mqsentry conform --target native --gvisor-table docs/gvisor-conformance.md` (which runs",
        "`runsc --rootless=false --network=none do mqsentry conform --target native` and renders its JSON).",
        "Do not edit by hand. Every test encodes Linux behaviour and passes on Linux; a failure here is a",
        "place where gVisor's Go kernel differs from Linux (or lacks a feature the test needs).",
        "",
        f"- runsc: `{runsc_version}`; kernel seen inside: `{doc['kernel']}`",
        (f"- result: **{doc['passed']} passed, {doc['failed']} failed, {doc['skipped']} skipped** "
         f"({len(tests)} tests, {doc.get('seconds', '?')} s)"),
        "",
        "## By area",
        "",
        "| area | passed | failed | skipped |",
        "|---|---:|---:|---:|",
    ]
    for area in sorted(by_area):
        p, f, s = by_area[area]
        lines.append(f"| {area} | {p} | {f} | {s} |")
    causes: dict[str, int] = {}
    for failed in bad:
        cause = _cause(failed)
        causes[cause] = causes.get(cause, 0) + 1
    lines += ["", "## Causes", "", "Grouped from the first line of each failure (an unimplemented syscall, a missing",
              "/proc file, otherwise a different result in that area).", "", "| cause | tests |", "|---|---:|"]
    for cause, n in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {cause} | {n} |")
    lines += ["", "## Failures and skips", "", "| test | outcome | first line of the failure / skip reason |",
              "|---|---|---|"]
    for t in bad:
        name = "testsuite/" + t["id"].split("/testsuite/", 1)[-1].removeprefix("testsuite/")
        reason = t["reason"].replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(f"| `{name}` | {t['outcome']} | {reason} |")
    return "\n".join(lines) + "\n"


__all__ = ["add_parser", "render_table", "run", "run_suite"]
