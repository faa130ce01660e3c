"""The ``mqsentry`` subcommands as a user meets them: usage errors, ``--json``, progress, clean edges.

Every meaningless argument is a usage error: exit status 2, argparse's ``usage:`` line and a reason
on standard error, and never a traceback. ``--json`` writes one object per run. The tools package
never imports the test suite (nor the test extra) when it is imported, and a subcommand that needs
the test extra says how to install it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

import mqsentry
from mqsentry.tools import cliargs, stress
from mqsentry.tools.cli import SUBCOMMANDS, _build_parser, main


def _cli(*argv: str, extra_code: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m mqsentry ARGV`` in a fresh interpreter (``extra_code`` runs first)."""
    code = f"import sys\n{extra_code}\nfrom mqsentry.tools.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-P", "-c", code, *argv], capture_output=True, text=True,
                          timeout=timeout)


BAD = [
    ("bench", "--repeat", "0"),
    ("bench", "--repeat", "-3"),
    ("bench", "--top", "0"),
    ("bench", "--repeat", "many"),
    ("fuzz", "--calls", "0"),
    ("fuzz", "--calls", "-5"),
    ("fuzz", "--epoch-calls", "0"),
    ("fuzz", "--check-every", "0"),
    ("fuzz", "--mem-ceiling", "-1"),
    ("fuzz", "--block-bound", "0"),
    ("fuzz", "--max-violations", "0"),
    ("stress", "--tasks", "0"),
    ("stress", "--tasks", "-4"),
    ("stress", "--seconds", "0"),
    ("stress", "--seconds", "-1"),
    ("stress", "--seconds", "nan"),
    ("stress", "--bound", "inf"),
    ("difftest", "--examples", "0"),
    ("difftest", "--min-steps", "0"),
    ("difftest", "--max-steps", "-1"),
    ("difftest", "--min-steps", "9", "--max-steps", "3"),
    ("difftest", "--progress", "-1"),
    ("run", "--sysctl", "nonsense", "true"),
    ("run", "--sysctl", "kernel.nosuch=5", "true"),
    ("run", "--sysctl", "kernel.msgmax=-5", "true"),
    ("run", "--sysctl", "fs.mqueue.msg_max=0", "true"),
    ("fuzz", "--json", "/nonexistent-dir/out.json"),
    ("demo", "--arch", "pdp11"),
    ("no-such-command",),
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_meaningless_arguments_are_usage_errors(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: mqsentry" in err and "error:" in err
    assert "Traceback" not in err


def test_usage_error_from_the_command_line_has_no_traceback() -> None:
    r = _cli("bench", "--repeat", "0")
    assert r.returncode == 2
    assert "--repeat" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_every_subcommand_is_registered() -> None:
    parser = _build_parser()
    helptext = parser.format_help()
    for name in ("demo", "bench", "run", "fuzz", "stress", "difftest", "permmatrix", "emulate", "conform"):
        assert name in helptext
    assert len(SUBCOMMANDS) == 7


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"mqsentry {mqsentry.__version__}\n"


def test_importing_the_tools_imports_no_test_code() -> None:
    code = ("import sys, mqsentry.tools.cli\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('mqsentry.testsuite', 'hypothesis', 'pytest')))\n"
            "print(bad)")
    r = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_missing_test_extra_is_a_hint_not_a_traceback() -> None:
    # Make ``import hypothesis`` fail as it does where the test extra is not installed.
    r = _cli("difftest", "--examples", "1", extra_code="sys.modules['hypothesis'] = None")
    assert r.returncode == 2
    assert "pip install 'mqsentry[test]'" in r.stderr
    assert "Traceback" not in r.stderr


def test_permmatrix_needs_no_test_extra() -> None:
    """The permission matrix lives in the test suite but uses neither pytest nor hypothesis."""
    r = _cli("permmatrix", "--sentry-only", "--quiet",
             extra_code="sys.modules['hypothesis'] = None\nsys.modules['pytest'] = None")
    assert r.returncode == 0, r.stderr
    assert "mismatches: 0" in r.stdout


def test_a_subcommand_that_fails_to_import_is_an_error_at_start() -> None:
    """Static imports: a broken subcommand module stops the command line, it does not vanish from it."""
    r = subprocess.run([sys.executable, "-P", "-c",
                        "import sys; sys.modules['mqsentry.tools.stress'] = None\n"
                        "from mqsentry.tools.cli import main\nsys.exit(main(['--help']))"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "mqsentry.tools.stress" in r.stderr


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    rc = main([*argv, "--json", "-"])
    cap = capsys.readouterr()
    return rc, json.loads(cap.out), cap.err


def test_stress_with_four_tasks_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rec, err = _json(capsys, "stress", "--tasks", "4", "--seconds", "0.5", "--quiet")
    assert rc == 0, rec["violations"]
    assert rec["command"] == "stress" and rec["status"] == 0 and rec["version"] == mqsentry.__version__
    assert rec["tasks"] == 4 and rec["roles"] == ["sysv_sender", "sysv_receiver", "mq_sender", "mq_receiver"]
    assert rec["sent"] > 0 and rec["received"] > 0 and rec["violations"] == []
    assert "stress: 4 tasks" in err  # the text report moves to stderr when stdout carries the JSON


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_stress_runs_with_few_tasks(n: int) -> None:
    res = stress.stress(tasks=n, seconds=0.3, seed=n, bound=30.0)
    assert res.violations == []
    assert res.calls > 0


def test_stress_plan() -> None:
    assert stress.plan(1) == ["sysv_sender"]
    assert stress.plan(5)[-1] == "chaos"
    assert stress.plan(6).count("chaos") == 1 and len(stress.plan(6)) == 6
    assert stress.plan(16).count("chaos") == 1 and len(stress.plan(16)) == 16
    with pytest.raises(ValueError):
        stress.plan(0)


def test_fuzz_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rec, err = _json(capsys, "fuzz", "--calls", "300", "--seed", "3", "--quiet")
    assert rc == 0 and rec["violations"] == []
    assert rec["command"] == "fuzz" and rec["calls"] == 300 and rec["seed"] == 3
    assert sum(rec["by_name"].values()) == 300
    assert "fuzz: seed 3: 300 calls" in err


def test_fuzz_json_to_a_file(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fuzz.json"
    assert main(["fuzz", "--calls", "100", "--quiet", "--json", str(out)]) == 0
    assert "fuzz: seed 1: 100 calls" in capsys.readouterr().out
    assert json.loads(out.read_text())["calls"] == 100


def test_permmatrix_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rec, _ = _json(capsys, "permmatrix", "--sentry-only", "--quiet")
    assert rc == 0
    assert rec["cells"] == 6600 and rec["mismatches"] == [] and rec["native"] is False


def test_difftest_json(capsys: pytest.CaptureFixture[str]) -> None:
    from mqsentry.testsuite.difftest.runner import native_reason

    rc, rec, err = _json(capsys, "difftest", "--examples", "3", "--seed", "7", "--no-shrink", "--quiet")
    if native_reason():
        assert rc == 2 and rec["native_unavailable"]
        return
    assert rc == 0, err
    assert rec["sequences"] == 3 and rec["divergences"] == 0


def test_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rec, err = _json(capsys, "bench", "--quick", "--repeat", "1")
    assert rc == 0
    assert rec["mode"] == "quick" and rec["sizes"]["reps"] == 1
    labels = [r["label"] for r in rec["rows"]]
    assert any(label.startswith("SysV msgsnd+msgrcv pair") for label in labels)
    assert all(r["verdict"] in ("PASS", "MISS", "SKIP") for r in rec["rows"])
    assert "measurement" in err  # the table went to stderr


def test_progress_goes_to_stderr_at_most_once_per_interval() -> None:
    buf = io.StringIO()
    p = cliargs.Progress("x", every=3600.0, stream=buf)
    calls = []
    p.tick(lambda: calls.append(1) or "never")  # type: ignore[func-returns-value]
    assert buf.getvalue() == "" and calls == []  # the text is not even computed before the interval
    p.step("phase one")
    assert buf.getvalue().startswith("x: phase one (")
    off = io.StringIO()
    q = cliargs.Progress("x", every=0.0, stream=off)
    q.step("nothing")
    q.tick(lambda: "nothing")
    assert off.getvalue() == ""


def test_stress_reports_progress_while_it_runs() -> None:
    buf = io.StringIO()
    res = stress.stress(tasks=6, seconds=1.5, seed=5, bound=30.0,
                        progress=cliargs.Progress("stress", every=0.2, stream=buf))
    assert res.violations == []
    lines = buf.getvalue().splitlines()
    assert lines and all(line.startswith("stress: ") and " calls, " in line for line in lines)


def test_checkers_read_engine_state_only_through_public_accessors() -> None:
    """tools.invariants, stress and fuzz never reach into an engine's private fields (``x._name``):
    the engines offer read-only accessors for what a checker needs."""
    import ast
    import pathlib

    import mqsentry.tools as tools_pkg

    here = pathlib.Path(tools_pkg.__file__).parent
    bad = []
    for name in ("invariants.py", "stress.py", "fuzz.py"):
        tree = ast.parse((here / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls", "invariants", "argparse"):
                    continue  # the tool's own state, the checker module's helpers, argparse's types
                bad.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert bad == []
