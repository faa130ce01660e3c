"""``mqsentry conform``: the summary line, the JSON, the gVisor table, and the native target's
portable fallbacks (forced with MQSENTRY_NATIVE_PORTABLE=1, so they keep working on Linux too).

Linux counterpart: none. gVisor counterpart: test/runner (running one suite against several kernels).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from mqsentry.tools.conform import parse_json_lines, render_table

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")


def _conform(*argv: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    r = subprocess.run([sys.executable, "-m", "mqsentry", "conform", *argv], capture_output=True, text=True,
                       timeout=600, env={**os.environ, **(env or {})}, check=False)
    return r.returncode, r.stdout.splitlines()


def _doc(lines: list[str]) -> dict:
    return parse_json_lines(lines)


def test_sentry_subset_summary_and_json() -> None:
    rc, lines = _conform("--target", "sentry", "-n", "0", "-k", "test_deadlines", "--json", "-", "-q")
    assert rc == 0, lines[-20:]
    m = SUMMARY.match(lines[-1])
    assert m, lines[-1]
    doc = _doc(lines)
    assert doc["target"] == "sentry" and doc["failed"] == 0
    assert int(m.group(1)) == doc["passed"] == len(doc["tests"]) >= 20
    assert all("[sentry" in t["id"] for t in doc["tests"])


def test_native_portable_fallbacks_pass() -> None:
    """Blocking detection through the syscall stub and memory writes through each process's memory
    thread give the same results as /proc/<pid>/task/<tid>/syscall and /proc/<pid>/mem."""
    from mqsentry.testsuite.targets import native

    reason = native.unavailable_reason()
    if reason:
        pytest.skip(f"native target unavailable: {reason}")
    rc, lines = _conform("--target", "native", "-n", "0", "-k",
                         "test_deadlines or test_interrupt or test_sa_restart or test_realtime_signals", "--json",
                         "-", "-q", env={"MQSENTRY_NATIVE_PORTABLE": "1"})
    doc = _doc(lines)
    assert rc == 0 and doc["failed"] == 0 and doc["skipped"] == 0, [t for t in doc["tests"]
                                                                   if t["outcome"] != "passed"]
    assert doc["passed"] >= 25


def test_gvisor_table_renders_failures_and_areas() -> None:
    doc = {"kernel": "Linux 4.4.0", "passed": 1, "failed": 1, "skipped": 1, "seconds": 2.0, "tests": [
        {"id": "testsuite/mq/test_a.py::test_x[native]", "outcome": "passed", "reason": ""},
        {"id": "testsuite/mq/test_a.py::test_y[native]", "outcome": "failed", "reason": "LinuxError: ENOSYS | x"},
        {"id": "testsuite/fs/test_b.py::test_z[native]", "outcome": "skipped", "reason": "needs /proc/sysvipc"}]}
    text = render_table(doc, "runsc version 0.0")
    assert "**1 passed, 1 failed, 1 skipped**" in text
    assert "| mq/test_a | 1 | 1 | 0 |" in text and "| fs/test_b | 0 | 0 | 1 |" in text
    assert "| `testsuite/mq/test_a.py::test_y[native]` | failed | LinuxError: ENOSYS \\| x |" in text
    assert "test_x" not in text.split("## Failures")[1]
