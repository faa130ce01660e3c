"""Blocking mq_timedsend/mq_timedreceive: absolute CLOCK_REALTIME deadlines, wake-ups (pipelined
hand-over to a waiting receiver, a freed slot handed to a waiting sender), waiter order, signals
(EINTR without SA_RESTART, transparent restart with it).

Linux counterpart: ipc/mqueue.c wq_sleep/pipelined_send/pipelined_receive, -ERESTARTSYS in
do_mq_timedsend/do_mq_timedreceive, arch signal restart. gVisor counterpart: the refs/pull/6458 mq.cc
SendTimeout, ReceiveTimeout, ZeroTimeout, SendBlocking, ReceiveBlocking, General, InterruptReceive,
InterruptSend (whose relative-timeout reading of abs_timeout is a flaw fixed here).
"""

from __future__ import annotations

import functools
import time

from mqsentry.abi.linux.errno import EAGAIN, EINTR, ETIMEDOUT
from mqsentry.abi.linux.file import O_NONBLOCK, O_RDWR
from mqsentry.abi.linux.signal import SA_RESTART, SA_SIGINFO, SI_TKILL, SIGUSR1
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.mq import MAXMSG, MSG, MSGSIZE, NAME, create, fill, status, text
from mqsentry.testsuite.targets.base import Target
from mqsentry.testsuite.util import WAIT, background, errno_of, start_blocked, wait_blocked, wait_until

#: A real wait that is short but well above timer slack.
SHORT = 0.08

# -- timeouts ----------------------------------------------------------------------------------------------------


def test_send_timeout(proc: Proc) -> None:
    fd = create(proc)
    fill(proc, fd)
    start = time.monotonic()
    with expect_errno(ETIMEDOUT):
        proc.mq_timedsend(fd, MSG, 1, proc.deadline(SHORT))
    assert time.monotonic() - start >= SHORT * 0.9
    assert proc.mq_getattr(fd).curmsgs == MAXMSG


def test_receive_timeout(proc: Proc) -> None:
    fd = create(proc)
    start = time.monotonic()
    with expect_errno(ETIMEDOUT):
        proc.mq_timedreceive(fd, MSGSIZE, proc.deadline(SHORT))
    assert time.monotonic() - start >= SHORT * 0.9


def test_past_deadline_times_out_at_once(proc: Proc) -> None:
    """gVisor's ZeroTimeout ({0, 0}) and the {0, 1000} its draft meant as a 1 µs *relative* timeout:
    both are absolute times in 1970, so the call fails at once."""
    fd = create(proc)
    for ts in ((0, 0), (0, 1000), proc.deadline(-1.0)):
        start = time.monotonic()
        with expect_errno(ETIMEDOUT):
            proc.mq_timedreceive(fd, MSGSIZE, ts)
        assert time.monotonic() - start < 5
    fill(proc, fd)
    for ts in ((0, 0), (0, 1000), proc.deadline(-1.0)):
        with expect_errno(ETIMEDOUT):
            proc.mq_timedsend(fd, MSG, 0, ts)


def test_nonblock_wins_over_deadline(proc: Proc) -> None:
    fd = create(proc, oflag=O_RDWR | O_NONBLOCK)
    with expect_errno(EAGAIN):
        proc.mq_timedreceive(fd, MSGSIZE, (0, 0))
    with expect_errno(EAGAIN):
        proc.mq_timedreceive(fd, MSGSIZE, proc.deadline(10.0))
    fill(proc, fd)
    with expect_errno(EAGAIN):
        proc.mq_timedsend(fd, MSG, 0, (0, 0))


def test_timed_receive_succeeds_before_deadline(proc: Proc) -> None:
    fd = create(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_timedreceive(fd, MSGSIZE, t.deadline(WAIT)))
    proc.mq_send(fd, MSG, 4)
    assert fut.result(WAIT) == (MSG, 4)


# -- wake-ups ------------------------------------------------------------------------------------------------------


def test_send_blocking(proc: Proc) -> None:
    fd = create(proc)
    fill(proc, fd, data=b"old")
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_send(fd, b"new", 0))
    assert proc.mq_receive(fd, MSGSIZE) == (b"old", 0)
    assert fut.result(WAIT) is None
    # The waiting sender's message took the freed slot: the queue is full again, "new" last.
    assert proc.mq_getattr(fd).curmsgs == MAXMSG
    got = [proc.mq_receive(fd, MSGSIZE)[0] for _ in range(MAXMSG)]
    assert got == [b"old"] * (MAXMSG - 1) + [b"new"]


def test_blocked_sender_message_sorted_by_priority(proc: Proc) -> None:
    fd = create(proc)
    fill(proc, fd, data=b"low", prio=0)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_send(fd, b"high", 9))
    assert proc.mq_receive(fd, MSGSIZE) == (b"low", 0)
    fut.result(WAIT)
    assert proc.mq_receive(fd, MSGSIZE) == (b"high", 9)


def test_receive_blocking(proc: Proc) -> None:
    fd = create(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_receive(fd, MSGSIZE))
    proc.mq_send(fd, MSG, 1)
    assert fut.result(WAIT) == (MSG, 1)
    # The message went straight to the receiver.
    assert proc.mq_getattr(fd).curmsgs == 0
    assert text(proc, fd) == status()


def test_receive_blocking_other_process(proc: Proc) -> None:
    fd = create(proc)
    child = proc.fork()
    fut = start_blocked(child, lambda: child.mq_receive(fd, MSGSIZE))
    proc.mq_send(fd, b"to the child", 3)
    assert fut.result(WAIT) == (b"to the child", 3)


def test_waiting_receivers_served_in_order(proc: Proc) -> None:
    fd = create(proc)
    t1, t2 = proc.thread(), proc.thread()
    f1 = start_blocked(t1, lambda: t1.mq_receive(fd, MSGSIZE))
    f2 = start_blocked(t2, lambda: t2.mq_receive(fd, MSGSIZE))
    proc.mq_send(fd, b"first", 0)
    proc.mq_send(fd, b"second", 5)
    assert f1.result(WAIT) == (b"first", 0)
    assert f2.result(WAIT) == (b"second", 5)


def test_waiting_senders_served_in_order(proc: Proc) -> None:
    fd = create(proc, attr=(1, 64))
    proc.mq_send(fd, b"full")
    t1, t2 = proc.thread(), proc.thread()
    f1 = start_blocked(t1, lambda: t1.mq_send(fd, b"one"))
    f2 = start_blocked(t2, lambda: t2.mq_send(fd, b"two"))
    assert proc.mq_receive(fd, 64) == (b"full", 0)
    f1.result(WAIT)
    assert not f2.done()
    assert proc.mq_receive(fd, 64) == (b"one", 0)
    f2.result(WAIT)
    assert proc.mq_receive(fd, 64) == (b"two", 0)


def test_general(proc: Proc) -> None:
    """Several blocked receivers and concurrent senders: every message reaches one receiver."""
    fd = create(proc)
    n = 5
    receivers = [proc.thread() for _ in range(n)]
    futs = [start_blocked(r, functools.partial(r.mq_receive, fd, MSGSIZE)) for r in receivers]
    senders = [proc.thread() for _ in range(n)]
    sfuts = [background(functools.partial(s.mq_send, fd, MSG, 1)) for s in senders]
    for f in sfuts:
        assert f.result(WAIT) is None
    for f in futs:
        assert f.result(WAIT) == (MSG, 1)
    assert proc.mq_getattr(fd).curmsgs == 0


# -- signals ----------------------------------------------------------------------------------------------------


def _interrupt(proc: Proc, t: Proc) -> None:
    proc.tgkill(proc.pid, t.tid, SIGUSR1)


def test_interrupt_receive(proc: Proc) -> None:
    fd = create(proc)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_receive(fd, MSGSIZE))
    _interrupt(proc, t)
    assert errno_of(fut) == EINTR
    d = proc.deliveries()
    assert [(x.signo, x.code) for x in d] == [(SIGUSR1, SI_TKILL)]


def test_interrupt_send(proc: Proc) -> None:
    fd = create(proc)
    fill(proc, fd)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_send(fd, MSG, 1))
    _interrupt(proc, t)
    assert errno_of(fut) == EINTR
    assert proc.mq_getattr(fd).curmsgs == MAXMSG


def test_interrupt_timed_receive(proc: Proc) -> None:
    fd = create(proc)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_timedreceive(fd, MSGSIZE, t.deadline(WAIT)))
    _interrupt(proc, t)
    assert errno_of(fut) == EINTR


def test_sa_restart_restarts_receive(proc: Proc) -> None:
    """mq calls sleep with -ERESTARTSYS: with SA_RESTART the handler runs and the call resumes."""
    fd = create(proc)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO | SA_RESTART)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_receive(fd, MSGSIZE))
    _interrupt(proc, t)
    wait_until(lambda: len(proc.deliveries()) == 1, what="the signal to be handled")
    wait_blocked(t)
    assert not fut.done()
    proc.mq_send(fd, MSG, 2)
    assert fut.result(WAIT) == (MSG, 2)


def test_sa_restart_restarts_send(proc: Proc) -> None:
    fd = create(proc)
    fill(proc, fd, data=b"old")
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO | SA_RESTART)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_send(fd, b"new", 0))
    _interrupt(proc, t)
    wait_until(lambda: len(proc.deliveries()) == 1, what="the signal to be handled")
    wait_blocked(t)
    assert not fut.done()
    assert proc.mq_receive(fd, MSGSIZE) == (b"old", 0)
    assert fut.result(WAIT) is None
    assert proc.mq_getattr(fd).curmsgs == MAXMSG


def test_sa_restart_keeps_absolute_deadline(proc: Proc) -> None:
    """A restarted timed call still ends at its (absolute) deadline, with ETIMEDOUT, not EINTR."""
    fd = create(proc)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO | SA_RESTART)
    t = proc.thread()
    start = time.monotonic()
    fut = start_blocked(t, lambda: t.mq_timedreceive(fd, MSGSIZE, t.deadline(0.3)))
    _interrupt(proc, t)
    assert errno_of(fut) == ETIMEDOUT
    assert time.monotonic() - start < WAIT
    # If the deadline won the race against the signal, t takes it on its next kernel entry.
    wait_until(lambda: t.getpid() > 0 and len(proc.deliveries()) == 1, what="the signal to be handled")


def test_ignored_signal_does_not_interrupt(proc: Proc) -> None:
    fd = create(proc)
    proc.sigaction(SIGUSR1, handler=1)  # SIG_IGN
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_receive(fd, MSGSIZE))
    _interrupt(proc, t)
    time.sleep(0.02)
    wait_blocked(t)
    assert not fut.done()
    proc.mq_send(fd, MSG)
    assert fut.result(WAIT) == (MSG, 0)


def test_blocked_receive_through_other_description(target: Target, proc: Proc) -> None:
    """Two descriptors of one queue (opened separately) share its waiters."""
    fd = create(proc)
    other = Proc(target.spawn())
    rd = other.mq_open(NAME, O_RDWR)
    fut = start_blocked(other, lambda: other.mq_receive(rd, MSGSIZE))
    proc.mq_send(fd, b"hi", 1)
    assert fut.result(WAIT) == (b"hi", 1)
