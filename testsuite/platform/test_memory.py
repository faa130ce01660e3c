"""A served msgsnd holds about one copy of the message in the sentry, as Linux holds one (issue 9).

Linux counterpart: ipc/msg.c ``do_msgsnd`` -> ipc/msgutil.c ``load_msg`` (the message is copied once,
into the queue's own ``msg_msg`` segments) and ``do_msgrcv`` -> ``store_msg`` (copied out of them).
gVisor counterpart: pkg/sentry/kernel/msgqueue (``Queue.Send`` keeps the one buffer it copied in).

The sentry reads the caller's buffer straight into the bytes object the queue keeps, and writes the
receiver's buffer from it; no second copy of the payload lives at any moment. The measure is the
sentry process's peak resident size (VmHWM), read while the program is still running, against the
same run with a 4 KiB message: memory, not time, so a loaded machine does not change it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from mqsentry.testsuite.platform.helpers import PYTHON_M, TIMEOUT

BIG = 64 << 20


def _peak_kib(exe: str, size: int) -> int:
    """The sentry's VmHWM (KiB) after ``exe`` sent and received one ``size``-byte message."""
    argv = [*PYTHON_M, "mqsentry.tools.run", "--sysctl", f"kernel.msgmax={size}",
            "--sysctl", f"kernel.msgmnb={size}", exe, str(size)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as p:
        assert p.stdout is not None and p.stdin is not None
        try:
            line = p.stdout.readline()  # the program has finished its exchange and now waits
            assert line == f"done {size}\n", (line, p.stderr.read() if p.stderr else "")
            with open(f"/proc/{p.pid}/status", encoding="ascii") as f:
                fields = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
        finally:
            p.stdin.close()
            p.wait(timeout=TIMEOUT)
    assert p.returncode == 0
    return int(fields["VmHWM"].split()[0])


def test_served_msgsnd_holds_one_copy(cprog: Callable[[str], str]) -> None:
    exe = cprog("bigsend")
    small = _peak_kib(exe, 4096)
    big = _peak_kib(exe, BIG)
    grown = (big - small) * 1024
    # One copy is BIG (the queue's own); a transient second copy would make it 2 x BIG. Half a
    # message of slack covers the interpreter's own allocations.
    assert grown < 1.5 * BIG, f"the sentry's peak grew by {grown / BIG:.2f} x the message size"
