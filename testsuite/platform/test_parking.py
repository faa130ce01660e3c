"""Parking: a served call that sleeps holds a greenlet, never an OS thread (issue 9, item 10).

Linux counterpart: a task asleep on a wait queue costs the kernel its task_struct and nothing per
wait; gVisor counterpart: a goroutine per task blocked in ``Task.block``. Here: many receivers are
parked in the sentry at once while the sentry's OS thread count stays what it was (read from
/proc/<sentry pid>/task, the sentry running in this process); timed calls end at their deadline
(the loop's timer heap), never before it; a parked call whose reply fails undoes on its own
greenlet before it leaves the parked set.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_NOWAIT, IPC_PRIVATE
from mqsentry.boot import Kernel
from mqsentry.kernel.platform import seccomp
from mqsentry.testsuite.platform.helpers import TIMEOUT, assert_same, run_native, run_sentry
from mqsentry.testsuite.platform.test_undo import MSGGET, MSGRCV, MSGSND, StubListener, _msg

N_PARKED = 1100


def _os_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _wait(cond: Callable[[], bool], what: str, alive: Callable[[], bool] = lambda: True) -> None:
    """Wait for a state (not for a time): ``cond`` true, or fail once ``alive`` says it never will."""
    ev = threading.Event()
    while not cond():
        if not alive():
            pytest.fail(f"gave up waiting for {what}")
        ev.wait(0.01)


def test_parked_calls_hold_no_os_thread(cprog: Callable[[str], str]) -> None:
    """1,100 receivers parked in the sentry at once; the sentry (this process) has as many OS threads
    as before it served them, whatever their number; then every one receives its message."""
    from mqsentry.kernel.platform import launch
    from mqsentry.kernel.platform.calls import OBSERVED, SERVED
    from mqsentry.kernel.platform.loop import Platform
    from mqsentry.kernel.platform.seccomp import Listener

    exe = cprog("parking")
    before = _os_threads(os.getpid())
    launched = launch.spawn([exe, "many", str(N_PARKED)], list(SERVED), list(OBSERVED),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    plat = Platform(Kernel(arch="amd64"), Listener(launched.listener_fd))
    server = threading.Thread(target=plat.serve, name="sentry-loop", daemon=True)
    server.start()
    try:
        _wait(lambda: len(plat._parked) == N_PARKED, f"{N_PARKED} parked receivers",
              lambda: launched.proc.poll() is None and server.is_alive())
        # The loop's thread is the only one the sentry added; no thread per parked call.
        assert _os_threads(os.getpid()) <= before + 1
        assert launched.proc.stdin is not None
        out, err = launched.proc.communicate(b"g", timeout=TIMEOUT * 4)
    finally:
        if launched.proc.poll() is None:
            launched.proc.kill()
            launched.proc.wait()
        server.join(TIMEOUT)
        plat.close()
    assert not server.is_alive()
    assert out.decode() == f"threads {N_PARKED}, sent {N_PARKED}, left 0\n", err.decode()
    assert plat.stats["parked"] >= N_PARKED
    assert not plat._parked
    assert plat.stats.get("restart_leaks", 0) == 0


def test_timed_calls_end_at_their_deadline_like_linux(cprog: Callable[[str], str]) -> None:
    """mq_timedreceive/mq_timedsend parked with different deadlines return ETIMEDOUT, none early,
    while a msgrcv parked beside them is woken by its message."""
    exe = cprog("parking")
    assert_same(run_native([exe, "timed"]), run_sentry([exe, "timed"]))


# -- the loop with a listener fed by the test ----------------------------------------------------------
class FeedListener(StubListener):
    """A listener stub the test feeds: :meth:`feed` queues a notification for the loop's RECV (an
    eventfd semaphore makes the poll see one event per notification); replies are recorded."""

    def __init__(self) -> None:
        super().__init__()
        os.close(self.fd)
        self.fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK | os.EFD_SEMAPHORE)
        self.q: collections.deque[Any] = collections.deque()
        self.replied = threading.Condition()

    def feed(self, n: Any) -> None:
        self.q.append(n)
        os.eventfd_write(self.fd, 1)

    def recv(self) -> Any:
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            return None
        return self.q.popleft()

    def send(self, nid: int, val: int = 0, error: int = 0, flags: int = 0) -> bool:
        with self.replied:
            ok = super().send(nid, val, error, flags)
            self.replied.notify_all()
        return ok

    def result(self, nid: int) -> int:
        with self.replied:
            if not self.replied.wait_for(lambda: nid in self.sent, TIMEOUT):
                pytest.fail(f"no reply to notification {nid}")
            val, err = self.sent[nid]
        return err if err else val


@pytest.fixture
def served(platform_ok: None) -> Iterator[Any]:
    """A platform serving a :class:`FeedListener` on its own loop thread."""
    from mqsentry.kernel.platform.loop import Platform

    plat = Platform(Kernel(arch="amd64"), FeedListener())  # type: ignore[arg-type]
    th = threading.Thread(target=plat.serve, daemon=True)
    th.start()
    yield plat
    plat.stop()
    th.join(TIMEOUT)
    assert not th.is_alive()
    plat.close()


class _Thread:
    """A live thread of this process: its TID names a caller whose memory is ours."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._tid: list[int] = []
        got = threading.Event()

        def run() -> None:
            self._tid.append(threading.get_native_id())
            got.set()
            self._stop.wait()

        self._th = threading.Thread(target=run, daemon=True)
        self._th.start()
        got.wait()
        self.tid = self._tid[0]
        self.buf = ctypes.create_string_buffer(256)
        self.addr = ctypes.addressof(self.buf)

    def close(self) -> None:
        self._stop.set()
        self._th.join()


def test_parked_call_undoes_on_its_own_greenlet(served: Any) -> None:
    """A receiver parked in msgrcv gets a message handed over by msgsnd; resumed, its SEND fails and
    it puts the message back before it leaves the parked set."""
    lst = served.listener
    a, b = _Thread(), _Thread()
    try:
        def call(nid: int, who: _Thread, nr: int, *args: int, fail: bool = False, wait: bool = True) -> int:
            if fail:
                lst.fail.add(nid)
            lst.feed(SimpleNamespace(id=nid, pid=who.tid, nr=nr, arch=seccomp.AUDIT_ARCH_X86_64,
                                     args=(*args, 0, 0, 0, 0, 0, 0)[:6]))
            return lst.result(nid) if wait else 0

        qid = call(1, a, MSGGET, IPC_PRIVATE, IPC_CREAT | 0o600)
        assert qid >= 0
        call(2, b, MSGRCV, qid, b.addr, 64, 9, 0, fail=True, wait=False)
        _wait(lambda: len(served._parked) == 1, "the receiver to park")
        ctypes.memmove(a.buf, _msg(9, b"handed"), 14)
        assert call(3, a, MSGSND, qid, a.addr, 6, 0) == 0  # pipelined to the parked receiver
        assert lst.result(2) == 6  # it replied (and the reply failed)
        assert served.stats["undone"] == 1 and served.stats["lost_replies"] == 1
        assert not served._parked
        assert call(4, a, MSGRCV, qid, a.addr, 64, 0, IPC_NOWAIT) == 6
        assert a.buf.raw[:14] == _msg(9, b"handed")
    finally:
        a.close()
        b.close()


def test_a_wake_from_another_os_thread_resumes_a_parked_call(served: Any) -> None:
    """A sender that is not on the loop's thread (as the FUSE thread may be) wakes a parked receiver:
    the wake goes through the ready list and the wake eventfd, and the receiver gets the message."""
    lst = served.listener
    b = _Thread()
    try:
        lst.feed(SimpleNamespace(id=1, pid=b.tid, nr=MSGGET, arch=seccomp.AUDIT_ARCH_X86_64,
                                 args=(IPC_PRIVATE, IPC_CREAT | 0o600, 0, 0, 0, 0)))
        qid = lst.result(1)
        assert qid >= 0
        lst.feed(SimpleNamespace(id=2, pid=b.tid, nr=MSGRCV, arch=seccomp.AUDIT_ARCH_X86_64,
                                 args=(qid, b.addr, 64, 0, 0, 0)))
        _wait(lambda: len(served._parked) == 1, "the receiver to park")
        sender = served.kernel.new_task(uid=0, gid=0)  # an in-process task, driven by this thread
        buf = sender.mm.alloc(64)
        sender.mm.write(buf, _msg(5, b"cross"))
        assert sender.syscall(MSGSND, qid, buf, 5, 0) == 0
        assert lst.result(2) == 5
        assert b.buf.raw[:13] == _msg(5, b"cross")
        assert not served._parked and served.stats["undone"] == 0
    finally:
        b.close()


def test_stopping_runs_parked_calls_to_their_reply(platform_ok: None) -> None:
    """A loop asked to stop interrupts its parked calls and lets each reply before serve() returns:
    the interrupted msgrcv replies -ERESTARTNOHAND (the host turns it into EINTR), nothing stays
    parked and no greenlet is left behind."""
    from mqsentry.kernel.platform.loop import Platform

    lst = FeedListener()
    plat = Platform(Kernel(arch="amd64"), lst)  # type: ignore[arg-type]
    th = threading.Thread(target=plat.serve, daemon=True)
    th.start()
    callers = [_Thread(), _Thread()]
    try:
        lst.feed(SimpleNamespace(id=1, pid=callers[0].tid, nr=MSGGET, arch=seccomp.AUDIT_ARCH_X86_64,
                                 args=(IPC_PRIVATE, IPC_CREAT | 0o600, 0, 0, 0, 0)))
        qid = lst.result(1)
        for nid, who in zip((2, 3), callers):  # two parked calls (two greenlets), from two TIDs
            lst.feed(SimpleNamespace(id=nid, pid=who.tid, nr=MSGRCV, arch=seccomp.AUDIT_ARCH_X86_64,
                                     args=(qid, who.addr, 64, 0, 0, 0)))
            _wait(functools.partial(lambda n: len(plat._parked) == n, nid - 1), "the receiver to park")
        plat.stop()
        th.join(TIMEOUT)
        assert not th.is_alive()
        assert lst.result(2) == lst.result(3) == -514  # ERESTARTNOHAND
        assert not plat._parked and plat.stats["interrupted"] == 2
        assert plat._parking.owner is None and not plat._parking.idle
    finally:
        for c in callers:
            c.close()
        plat.close()
