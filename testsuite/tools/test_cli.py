"""The ``mqsentry`` command line: ``demo`` and ``bench --quick`` run and print what they should.

No timing is asserted here: performance targets are reported by the bench itself."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import platform
import subprocess
import sys

import pytest

from mqsentry.tools import buildinfo
from mqsentry.tools.cli import main

HAVE_SYSV = importlib.util.find_spec("mqsentry.syscalls.linux.sys_msgqueue") is not None
HAVE_POSIX = importlib.util.find_spec("mqsentry.syscalls.linux.sys_mq") is not None


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    rc = main(list(argv))
    return rc, capsys.readouterr().out.splitlines()


@pytest.mark.skipif(not HAVE_SYSV, reason="mqsentry.syscalls.linux.sys_msgqueue is not in this build")
def test_demo_sysv_trace(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = run(capsys, "demo", "--only", "sysv")
    assert rc == 0
    want = [
        "[pid 1] msgget(1234, IPC_CREAT|IPC_EXCL|0600) = 0",
        "[pid 2] msgget(1234, 0) = 0",
        "[pid 1] msgrcv(0, <unfinished ...>",
        '[pid 2] msgsnd(0, {1, "ping"}, 4, 0) = 0',
        '[pid 1] <... msgrcv resumed>{1, "ping"}, 64, 1, 0) = 4',
        '[pid 1] msgsnd(0, {2, "pong"}, 4, 0) = 0',
        '[pid 2] msgrcv(0, {2, "pong"}, 64, 2, 0) = 4',
        '[pid 1] msgrcv(0, {3, "urgent: flush"}, 64, 3, IPC_NOWAIT) = 13',
        "[pid 1] msgrcv(0, 0x10000000, 8, 1, IPC_NOWAIT) = -1 E2BIG (Argument list too long)",
        '[pid 1] msgrcv(0, {1, "job: res"}, 8, 1, IPC_NOWAIT|MSG_NOERROR) = 8',
        "[pid 1] msgrcv(0, 0x10000000, 64, 1, IPC_NOWAIT) = -1 ENOMSG (No message of desired type)",
        "[pid 1] msgctl(0, IPC_RMID, NULL) = 0",
        '[pid 2] msgsnd(0, {1, "late"}, 4, 0) = -1 EINVAL (Invalid argument)',
    ]
    # In this order (other lines may sit between them).
    it = iter(lines)
    for w in want:
        assert any(line == w for line in it), f"missing or out of order: {w}\n" + "\n".join(lines)
    stat = [line for line in lines if "msgctl(0, IPC_STAT," in line]
    assert len(stat) == 1
    for field in ("mode=0600", "key=1234", "msg_qnum=0", "msg_qbytes=16384", "msg_lspid=2", "msg_lrpid=1",
                  "msg_stime=1700000002", "msg_ctime=1700000000"):
        assert field in stat[0]


@pytest.mark.skipif(not HAVE_SYSV, reason="mqsentry.syscalls.linux.sys_msgqueue is not in this build")
def test_demo_raw_mode_prints_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = run(capsys, "demo", "--raw", "--only", "sysv")
    assert rc == 0
    assert "[pid 2] msgsnd(0, 0x10000000, 4, 0) = 0" in lines
    assert any(line.startswith("  msqid_ds: key=1234 mode=0600 qnum=0") for line in lines)


def test_demo_posix_part(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = run(capsys, "demo", "--only", "posix")
    assert rc == 0
    if not HAVE_POSIX:
        assert "POSIX queues not available in this build" in lines
        return
    opened = [line for line in lines if line.startswith('[pid 1] mq_open("mqsentry-demo", O_RDWR|O_CREAT|O_EXCL, '
                                                        "0600, {mq_flags=0, mq_maxmsg=8, mq_msgsize=64, "
                                                        "mq_curmsgs=0}) = ")]
    assert len(opened) == 1, "\n".join(lines)
    fd = int(opened[0].rsplit("= ", 1)[1])
    want = [
        f'[pid 1] mq_notify({fd}, {{sigev_value={{sival_int=42, sival_ptr=0x2a}}, sigev_signo=SIGUSR1, '
        "sigev_notify=SIGEV_SIGNAL}) = 0",
        '[pid 2] mq_open("mqsentry-demo", O_WRONLY) = ',
        ', "low priority", 12, 1, NULL) = 0',
        "[pid 1] --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_MESGQ, si_pid=2, si_uid=0, "
        "si_value={int=42, ptr=0x2a}} ---",
        f"[pid 1] mq_getsetattr({fd}, NULL, {{mq_flags=0, mq_maxmsg=8, mq_msgsize=64, mq_curmsgs=3}}) = 0",
        f'[pid 1] mq_timedreceive({fd}, "high", 64, [9], NULL) = 4',
        f'[pid 1] mq_timedreceive({fd}, "medium", 64, [5], NULL) = 6',
        f'[pid 1] mq_timedreceive({fd}, "low priority", 64, [1], NULL) = 12',
        f"[pid 1] mq_timedreceive({fd}, <unfinished ...>",
        "{tv_sec=1700000005, tv_nsec=0}) = -1 ETIMEDOUT (Connection timed out)",
        "= -1 EAGAIN (Resource temporarily unavailable)",
        '[pid 1] mq_unlink("mqsentry-demo") = 0',
    ]
    it = iter(lines)
    for w in want:
        assert any(w in line for line in it), f"missing or out of order: {w}\n" + "\n".join(lines)


def test_demo_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, "demo", "--embedded")
    assert first == run(capsys, "demo", "--embedded")
    assert first[0] == 0


def test_bench_quick_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = run(capsys, "bench", "--quick")
    assert rc == 0
    assert any(line.startswith("measurement") and "target" in line for line in lines)
    rows = {label: next((line for line in lines if line.startswith(label)), "") for label in (
        "SysV msgsnd+msgrcv pair", "SysV typed msgrcv+msgsnd", "SysV bytes per queued msg",
        "POSIX mq_timedsend+mq_timedreceive pair", "POSIX 32768 prios vs 1 prio", "POSIX bytes per queued msg")}
    for label, line in rows.items():
        assert line, f"no row for {label}"
        assert line.split()[-1] in ("PASS", "MISS", "SKIP") or "(" in line, line
    if HAVE_SYSV:
        assert "<= 1.00x" in rows["SysV msgsnd+msgrcv pair"] or "<= 2.50x" in rows["SysV msgsnd+msgrcv pair"]
        assert rows["SysV msgsnd+msgrcv pair"].split("x ")[0].split()[-1].replace(".", "").isdigit()
        assert " B " in rows["SysV bytes per queued msg"]
    if HAVE_POSIX:
        assert "SKIP" not in rows["POSIX 32768 prios vs 1 prio"]
        assert " B " in rows["POSIX bytes per queued msg"]


def test_bench_quick_heads_the_figures_with_what_they_ran_on(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = run(capsys, "bench", "--quick")
    assert rc == 0
    head = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in lines[1:5]}
    assert set(head) == {"commit", "python", "kernel", "machine"}, lines[:5]
    assert head["kernel"] == "pure Python" or "compiled" in head["kernel"]
    assert platform.python_version() in head["python"]
    assert "load" in head["machine"]


def test_bench_json_file(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    out = tmp_path / "bench.json"
    rc, lines = run(capsys, "bench", "--quick", "--json", str(out))
    assert rc == 0
    assert any(line.startswith("measurement") for line in lines)  # the table is still printed
    doc = json.loads(out.read_text())
    for key in ("commit", "python", "kernel", "compiled_modules", "loadavg", "rows", "rare_paths_ns"):
        assert key in doc, key
    assert doc["commit"]
    assert doc["kernel"] == "pure Python" if not doc["compiled_modules"] else "compiled" in doc["kernel"]
    labels = [r["label"] for r in doc["rows"]]
    assert any(label.startswith("SysV msgsnd+msgrcv pair") for label in labels)
    assert all(r["verdict"] in ("PASS", "MISS", "SKIP") for r in doc["rows"])


def test_bench_json_to_stdout_is_only_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "--quick", "--json", "-"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "quick" and doc["rows"]


@pytest.mark.skipif(not HAVE_SYSV, reason="mqsentry.syscalls.linux.sys_msgqueue is not in this build")
def test_bench_profile_quick(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = run(capsys, "bench", "--profile", "--quick", "--what", "sysv", "--top", "5")
    assert rc == 0
    assert any(line.startswith("== cProfile: SysV msgsnd+msgrcv") for line in lines)
    assert any("tottime" in line and "ncalls" in line for line in lines)
    # Which sentry function tops the list depends on load; that the rows are the sentry's does not.
    root = pathlib.Path(__file__).resolve().parents[2]
    ours = {p.name for pkg in ("kernel", "syscalls", "abi", "fs") for p in (root / pkg).rglob("*.py")}
    rows = [line.split()[-1] for line in lines if ".py:" in line]
    if buildinfo.compiled_modules():
        # mypyc-compiled functions are invisible to cProfile: only the (interpreted) bench loop shows.
        assert rows, lines
    else:
        # The bench's own timing loop (bench.py ``loop``) is profiled too and, the sentry's calls
        # being lean, may rank among the top rows; every other row is the sentry's.
        sentry_rows = [row for row in rows if not row.startswith("bench.py:")]
        assert sentry_rows and all(row.split(":")[0] in ours for row in sentry_rows), rows


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = run(capsys)
    assert rc == 2
    assert any("demo" in line for line in lines) and any("bench" in line for line in lines)


def test_python_dash_m_tools() -> None:
    r = subprocess.run([sys.executable, "-m", "mqsentry", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert "mqsentry" in r.stdout


def test_demo_runs_real_programs_under_the_sentry() -> None:
    """The README's main job: the C client/server pair as real processes, served by the sentry."""
    from mqsentry.tools import realdemo

    reason = realdemo.unavailable_reason()
    if reason is not None:
        pytest.skip(f"real programs cannot run under the sentry here: {reason}")
    r = subprocess.run([sys.executable, "-m", "mqsentry", "demo"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "sysv server: served 5, removing" in out
    assert "posix server: served 5, unlinking" in out
    assert "posix client: echo -> ECHO (4, prio 4)" in out
    # Each real call was served (and traced) by the sentry, pids being the host's.
    assert any(line.startswith("[pid ") and "msgget(1836151585, IPC_CREAT|IPC_EXCL|0666) = 0" in line for line in out)
    assert any(line.startswith("[pid ") and 'mq_unlink("plat-cs-req") = 0' in line for line in out)
