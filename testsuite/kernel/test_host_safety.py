"""The host's side of the embedding contract (issue 11): exceptions the host raises into a syscall,
host threads that share a task, and the waiter records a failed sleep leaves behind.

Linux counterpart: none directly; a task is one thread (a CPU runs one syscall of it at a time) and
``wq_sleep``/``do_msgrcv`` unlink their wait-queue entry on every way out. gVisor counterpart:
pkg/sentry/kernel/task_block.go (a task blocks on its own goroutine only) and the ``defer
q.EventUnregister`` pattern of its blocking syscalls.

Sentry-only: these are properties of the embedding API, which the native target does not have.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.abi.linux.signal import SIGUSR1
from mqsentry.abi.linux.sysno import NUMBERS
from mqsentry.kernel import Kernel, Task, TaskBusyError
from mqsentry.kernel.memory import AddressSpace
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.libc.errors import LinuxError
from mqsentry.testsuite.mq import MSG, MSGSIZE, create
from mqsentry.testsuite.targets.sentry import SentryTarget
from mqsentry.testsuite.util import WAIT, background, start_blocked, wait_until

NR = NUMBERS["amd64"]


@pytest.fixture
def sentry() -> Iterator[SentryTarget]:
    t = SentryTarget()
    try:
        yield t
    finally:
        t.close()


def _task(p: Proc) -> Task:
    return p.h.task  # type: ignore[attr-defined]


class _Interrupting(AddressSpace):
    """An address space whose reads raise ``exc`` while ``armed``."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: BaseException | None = None
        #: Reads to let through before ``armed`` fires.
        self.after = 0

    def _fire(self) -> None:
        if self.armed is not None:
            if self.after:
                self.after -= 1
                return
            exc, self.armed = self.armed, None
            raise exc

    def read(self, addr: int, n: int) -> bytes:
        self._fire()
        return super().read(addr, n)

    def read_cstring(self, addr: int, maxlen: int) -> bytes | None:
        self._fire()
        return super().read_cstring(addr, maxlen)


def test_keyboard_interrupt_from_host_memory_leaves_the_task_usable() -> None:
    k = Kernel()
    mm = _Interrupting()
    t = k.new_task(mm=mm)
    name = mm.alloc(16)
    mm.write(name, b"q\0")
    mm.armed = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        t.syscall(NR["mq_open"], name, 0o102, 0o600, 0)
    assert not t.in_syscall and t.state == "R"
    # The task is back in "user mode": a fatal signal kills it at once, as one sent to a thread
    # running user code does (one left "inside a syscall" would never see it).
    t.send_signal(_siginfo(SIGUSR1))
    assert t.exited
    t2 = k.new_task(mm=mm)
    assert t2.syscall(NR["mq_open"], name, 0o102, 0o600, 0) >= 0
    assert k.internal_errors == 0


def test_system_exit_in_fast_path_and_full_path() -> None:
    k = Kernel()
    mm = _Interrupting()
    t = k.new_task(mm=mm)
    nr = NR["mq_unlink"]
    name = mm.alloc(16)
    mm.write(name, b"nope\0")
    for tracer in (None, lambda *a: None):
        k.tracer = tracer
        mm.armed = SystemExit(3)
        with pytest.raises(SystemExit):
            t.syscall(nr, name)
        assert not t.in_syscall and t.state == "R"
        assert t.syscall(nr, name) < 0  # ENOENT: the task still works
    assert k.internal_errors == 0


def test_keyboard_interrupt_inside_ppoll_restores_the_signal_mask() -> None:
    """ppoll installs its temporary mask before reading the pollfds: a host exception there must not
    leave that mask in place (it would block signals for ever)."""
    k = Kernel()
    mm = _Interrupting()
    t = k.new_task(mm=mm)
    buf = mm.alloc(64)
    mm.write(buf, struct.pack("<qq", 5, 0) + struct.pack("<Q", 1 << (SIGUSR1 - 1)))  # timespec, sigset
    mm.armed, mm.after = KeyboardInterrupt(), 2  # the timespec and the mask are read, then the pollfds
    with pytest.raises(KeyboardInterrupt):
        t.syscall(NR["ppoll"], buf + 32, 1, buf, buf + 16, 8)
    assert t.sig_mask == 0 and t.saved_sig_mask is None and not t.in_syscall
    assert k.internal_errors == 0


def _siginfo(sig: int) -> Any:
    from mqsentry.kernel.signals import SigInfo

    return SigInfo(sig)


def test_second_host_thread_gets_task_busy_at_once(sentry: SentryTarget) -> None:
    proc = Proc(sentry.spawn())
    fd = create(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_receive(fd, MSGSIZE))
    # Another host thread on the same task: a clear error immediately, the sleeper is unharmed.
    other = background(lambda: _task(t).syscall(NR["getpid"]))
    with pytest.raises(TaskBusyError):
        other.result(WAIT)
    proc.mq_send(fd, MSG, 1)
    assert fut.result(WAIT) == (MSG, 1)
    assert t.getpid() == proc.pid  # the task is free again


class _Observer:
    """A park observer that raises ``on_park`` when the task starts to sleep, or ``on_unpark`` when
    it wakes (after the event it waited for has happened)."""

    def __init__(self, on_park: BaseException | None = None, on_unpark: BaseException | None = None) -> None:
        self.on_park = on_park
        self.on_unpark = on_unpark
        self.parked = threading.Event()

    def parking(self, task: Task) -> None:
        if self.on_park is not None:
            raise self.on_park
        self.parked.set()

    def unparked(self, token: None) -> None:
        if self.on_unpark is not None:
            raise self.on_unpark


def test_failed_mq_receive_sleep_leaves_no_waiter(sentry: SentryTarget) -> None:
    proc = Proc(sentry.spawn())
    fd = create(proc)
    t = proc.thread()
    _task(t).park_observer = _Observer(on_park=RuntimeError("observer bug"))
    with pytest.raises(LinuxError) as ei:
        t.mq_receive(fd, MSGSIZE)
    assert ei.value.errno == EINVAL
    assert sentry.kernel.internal_errors == 1
    sentry.kernel.internal_errors = 0  # counted as it must be; the test expected exactly this one
    proc.mq_send(fd, b"kept", 2)  # not handed to the failed receiver
    assert proc.mq_getattr(fd).curmsgs == 1
    assert proc.mq_receive(fd, MSGSIZE) == (b"kept", 2)


def test_failed_mq_send_sleep_queues_nothing(sentry: SentryTarget) -> None:
    proc = Proc(sentry.spawn())
    fd = create(proc, attr=(1, 64))
    proc.mq_send(fd, b"full")
    t = proc.thread()
    _task(t).park_observer = _Observer(on_park=RuntimeError("observer bug"))
    with pytest.raises(LinuxError):
        t.mq_send(fd, b"phantom")
    sentry.kernel.internal_errors = 0
    assert proc.mq_receive(fd, 64) == (b"full", 0)
    assert proc.mq_getattr(fd).curmsgs == 0  # the failed sender's message never appears


def test_interrupt_after_hand_over_puts_the_message_back(sentry: SentryTarget) -> None:
    proc = Proc(sentry.spawn())
    fd = create(proc)
    t = proc.thread()
    obs = _Observer(on_unpark=KeyboardInterrupt())
    _task(t).park_observer = obs
    fut = background(lambda: t.mq_receive(fd, MSGSIZE))
    wait_until(lambda: obs.parked.is_set() and _task(t).state == "S", what="the receiver to sleep")
    proc.mq_send(fd, b"handed", 4)  # pipelined to the sleeper, whose wake-up then raises
    with pytest.raises(KeyboardInterrupt):
        fut.result(WAIT)
    assert not _task(t).in_syscall
    assert proc.mq_receive(fd, MSGSIZE) == (b"handed", 4)


def test_failed_msgrcv_sleep_leaves_no_receiver(sentry: SentryTarget) -> None:
    proc = Proc(sentry.spawn())
    q = proc.msgget(0, 0o1600)
    t = proc.thread()
    _task(t).park_observer = _Observer(on_park=RuntimeError("observer bug"))
    with pytest.raises(LinuxError):
        t.msgrcv(q, 64, 0, 0)
    sentry.kernel.internal_errors = 0
    proc.msgsnd(q, 1, b"kept")
    assert proc.msgrcv(q, 64, 0, 0x800)[1] == b"kept"  # IPC_NOWAIT: it was queued


def test_interrupt_after_msgsnd_hand_over_puts_the_message_back(sentry: SentryTarget) -> None:
    proc = Proc(sentry.spawn())
    q = proc.msgget(0, 0o1600)
    t = proc.thread()
    obs = _Observer(on_unpark=KeyboardInterrupt())
    _task(t).park_observer = obs
    fut = background(lambda: t.msgrcv(q, 64, 0, 0))
    wait_until(lambda: obs.parked.is_set() and _task(t).state == "S", what="the receiver to sleep")
    proc.msgsnd(q, 7, b"handed")
    with pytest.raises(KeyboardInterrupt):
        fut.result(WAIT)
    assert proc.msgrcv(q, 64, 0, 0x800) == (7, b"handed")


def test_failed_msgsnd_sleep_leaves_no_sender(sentry: SentryTarget) -> None:
    proc = Proc(sentry.spawn())
    q = proc.msgget(0, 0o1600)
    proc.msgctl_set(q, qbytes=8)
    proc.msgsnd(q, 1, b"12345678")
    t = proc.thread()
    _task(t).park_observer = _Observer(on_park=RuntimeError("observer bug"))
    with pytest.raises(LinuxError):
        t.msgsnd(q, 1, b"x")
    sentry.kernel.internal_errors = 0
    assert not _task(proc).ipc_ns.msgqueues.lookup(q).senders
    assert proc.msgrcv(q, 64, 0, 0x800) == (1, b"12345678")
    assert proc.msgstat(q).qnum == 0
