"""Run a program under the platform with a listener that kills receivers just before their reply.

Linux counterpart: none (fault injection for the platform's commit/undo around SEND,
docs/platform-rules.md §3). gVisor counterpart: none.

``python -m mqsentry.testsuite.platform.undo_driver PROGRAM ARGS...``: every msgrcv whose msgtyp is
:data:`DOOMED_MSGTYP` has its caller SIGKILLed after the sentry served it (the message is dequeued
and written to the caller's buffer) and before the SEND, which then fails with ENOENT: the
deterministic form of "the target was killed between the engine's dequeue and the reply". The
platform's stats are printed to stderr at exit.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from mqsentry.kernel.platform.run import run_program
from mqsentry.kernel.platform.seccomp import Listener, Notification

NR_MSGRCV = 70
DOOMED_MSGTYP = 77


class KillingListener(Listener):
    """A listener that SIGKILLs the caller of a doomed msgrcv before completing it. ``doomed`` (nid
    -> tid) is touched by the loop thread (and the tests reading it); dict operations on
    distinct keys are atomic under the GIL."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self.doomed: dict[int, int] = {}

    def recv(self) -> Notification | None:
        n = super().recv()
        if n is not None and n.nr == NR_MSGRCV and n.args[3] == DOOMED_MSGTYP:
            self.doomed[n.id] = n.pid
        return n

    def send(self, nid: int, val: int = 0, error: int = 0, flags: int = 0) -> bool:
        tid = self.doomed.pop(nid, None)
        if tid is not None:
            try:
                os.kill(tid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5
            while self.id_valid(nid) and time.monotonic() < deadline:
                time.sleep(0.001)
        return super().send(nid, val, error, flags)


def main(argv: list[str]) -> int:
    return run_program(argv, stats=True, listener_factory=KillingListener)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
