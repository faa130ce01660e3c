"""The notification is re-validated after every /proc read and before every write into the program.

Linux counterpart: kernel/seccomp.c ``SECCOMP_IOCTL_NOTIF_ID_VALID`` (the supervisor's only proof
that a TID still names the thread that trapped). gVisor counterpart: none (gVisor owns its tasks).

A listener that answers "no longer valid" for one syscall's notifications stands in for a caller that
died and whose TID was reused between the trap and the sentry's reads: the sentry then acts on
nothing it read (its credentials, its memory) and writes nothing into the program.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest

from mqsentry.kernel.platform.run import run_program
from mqsentry.kernel.platform.seccomp import Listener, Notification
from mqsentry.testsuite.platform.helpers import run_native

NR_MSGGET, NR_MSGRCV = 68, 70


def _stale_listener(nr: int, asked: list[int]) -> Callable[[int], Listener]:
    class Stale(Listener):
        """Notifications of syscall ``nr`` are reported invalid (``stale`` is touched by the loop's
        owner and the replying thread; set operations are atomic under the GIL)."""

        def __init__(self, fd: int) -> None:
            super().__init__(fd)
            self.stale: set[int] = set()

        def recv(self) -> Notification | None:
            n = super().recv()
            if n is not None and n.nr == nr:
                self.stale.add(n.id)
            return n

        def id_valid(self, nid: int) -> bool:
            if nid in self.stale:
                asked.append(nid)
                return False
            return super().id_valid(nid)

    return Stale


def _run(exe: str, argv: list[str], nr: int, tmp: str) -> tuple[str, list[int]]:
    asked: list[int] = []
    out = os.path.join(tmp, "out")
    with open(out, "w") as f:
        rc = run_program([exe, *argv], listener_factory=_stale_listener(nr, asked), stdout=f)
    assert rc == 0
    with open(out) as f:
        return f.read(), asked


def test_credentials_read_for_a_stale_notification_are_not_used(cprog: Callable[[str], str],
                                                                 tmp_path: pathlib.Path) -> None:
    """msgget reads no memory; its caller's /proc status is read, then the notification checked."""
    text, asked = _run(cprog("adv_stale"), ["get"], NR_MSGGET, str(tmp_path))
    assert asked, "the notification was never re-validated"
    assert text == "msgget: errno38\n"  # ENOSYS: the reply a vanished caller would have got


def test_no_write_into_a_stale_caller(cprog: Callable[[str], str], tmp_path: pathlib.Path) -> None:
    text, asked = _run(cprog("adv_stale"), [], NR_MSGRCV, str(tmp_path))
    assert asked
    assert "msgsnd: ok\n" in text
    assert "buffer: -5 untouched" in text, text


def test_without_thread_pidfds(cprog: Callable[[str], str], tmp_path: pathlib.Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """On a host without PIDFD_THREAD (Linux < 6.9) threads are still served: their identity is
    re-read at every call instead of being dropped when they exit."""
    from mqsentry.kernel.platform import loop

    monkeypatch.setattr(loop, "PIDFD_THREAD", 0o1)  # an invalid flag: pidfd_open says EINVAL
    exe = cprog("adv_threads")
    native = run_native([exe])
    out = os.path.join(str(tmp_path), "out")
    with open(out, "w") as f:
        assert run_program([exe], stdout=f) == 0
    with open(out) as f:
        assert f.read() == native.stdout
