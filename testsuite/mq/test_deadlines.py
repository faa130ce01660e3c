"""Extreme and odd absolute deadlines for mq_timedsend/mq_timedreceive, and the waiter records they
leave behind (issue 11).

Linux counterpart: ipc/mqueue.c ``prepare_timeout`` (``timespec64_valid``: a negative tv_sec or a
tv_nsec outside [0, 1e9) is EINVAL, checked at entry, before the descriptor and before the queue is
looked at) and ``timespec64_to_ktime``, which clamps any tv_sec beyond KTIME_SEC_MAX to KTIME_MAX, so
``tv_sec = INT64_MAX`` blocks until a message, room or a signal. gVisor counterpart: none (its
send/receive are ENOSYS upstream); real conformance suites use ``INT64_MAX`` as "for ever".

The sleep is observed by waiting for the parked state, never by sleeping.
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.errno import EBADF, EINTR, EINVAL, ETIMEDOUT
from mqsentry.abi.linux.signal import SA_RESTART, SA_SIGINFO, SIGUSR1
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.mq import MAXMSG, MSG, MSGSIZE, create, fill
from mqsentry.testsuite.util import (
    WAIT,
    errno_of,
    start_blocked,
    wait_blocked,
    wait_until,
)

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
#: The furthest deadline a timespec can name, and one with the largest valid tv_nsec too.
FAR = ((INT64_MAX, 0), (INT64_MAX, 999_999_999))
#: Timespecs timespec64_valid rejects.
INVALID = ((-1, 0), (INT64_MIN, 0), (0, 1_000_000_000), (0, -1), (INT64_MAX, 1_000_000_000),
           (-1, 1_000_000_000), (0, INT64_MAX), (0, INT64_MIN))


@pytest.mark.parametrize("ts", FAR)
def test_far_deadline_receive_blocks_until_a_message(proc: Proc, ts: tuple[int, int]) -> None:
    fd = create(proc)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_timedreceive(fd, MSGSIZE, ts))
    proc.mq_send(fd, MSG, 3)
    assert fut.result(WAIT) == (MSG, 3)
    assert proc.mq_getattr(fd).curmsgs == 0


@pytest.mark.parametrize("ts", FAR)
def test_far_deadline_send_blocks_until_room(proc: Proc, ts: tuple[int, int]) -> None:
    fd = create(proc)
    fill(proc, fd, data=b"old")
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_timedsend(fd, b"new", 0, ts))
    assert proc.mq_receive(fd, MSGSIZE) == (b"old", 0)
    assert fut.result(WAIT) is None
    got = [proc.mq_receive(fd, MSGSIZE)[0] for _ in range(MAXMSG)]
    assert got == [b"old"] * (MAXMSG - 1) + [b"new"]


def test_far_deadline_receive_interrupted_leaves_no_waiter(proc: Proc) -> None:
    """EINTR from a far-deadline receive; the next message is queued, not handed to the gone
    receiver (the bug: the record stayed queued and swallowed it)."""
    fd = create(proc)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_timedreceive(fd, MSGSIZE, FAR[0]))
    proc.tgkill(proc.pid, t.tid, SIGUSR1)
    assert errno_of(fut) == EINTR
    proc.mq_send(fd, b"kept", 1)
    assert proc.mq_getattr(fd).curmsgs == 1
    assert proc.mq_receive(fd, MSGSIZE) == (b"kept", 1)


def test_far_deadline_send_interrupted_queues_nothing(proc: Proc) -> None:
    """EINTR from a far-deadline send: its message never appears later."""
    fd = create(proc)
    fill(proc, fd, data=b"old")
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_timedsend(fd, b"phantom", 0, FAR[0]))
    proc.tgkill(proc.pid, t.tid, SIGUSR1)
    assert errno_of(fut) == EINTR
    got = [proc.mq_receive(fd, MSGSIZE)[0] for _ in range(MAXMSG)]
    assert got == [b"old"] * MAXMSG
    assert proc.mq_getattr(fd).curmsgs == 0


def test_far_deadline_restarts_with_sa_restart(proc: Proc) -> None:
    fd = create(proc)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO | SA_RESTART)
    t = proc.thread()
    fut = start_blocked(t, lambda: t.mq_timedreceive(fd, MSGSIZE, FAR[1]))
    proc.tgkill(proc.pid, t.tid, SIGUSR1)
    wait_until(lambda: len(proc.deliveries()) == 1, what="the signal to be handled")
    wait_blocked(t)
    assert not fut.done()
    proc.mq_send(fd, MSG, 2)
    assert fut.result(WAIT) == (MSG, 2)


@pytest.mark.parametrize("ts", INVALID)
def test_invalid_timespec_is_einval_even_when_no_wait_is_needed(proc: Proc, ts: tuple[int, int]) -> None:
    """prepare_timeout runs at entry: EINVAL although the call would not block."""
    fd = create(proc)
    proc.mq_send(fd, MSG, 0)
    with expect_errno(EINVAL):
        proc.mq_timedreceive(fd, MSGSIZE, ts)
    with expect_errno(EINVAL):
        proc.mq_timedsend(fd, MSG, 0, ts)
    assert proc.mq_getattr(fd).curmsgs == 1


@pytest.mark.parametrize("ts", INVALID[:3])
def test_invalid_timespec_comes_before_bad_fd_and_prio(proc: Proc, ts: tuple[int, int]) -> None:
    with expect_errno(EINVAL):
        proc.mq_timedreceive(12345, MSGSIZE, ts)
    with expect_errno(EINVAL):
        proc.mq_timedsend(12345, MSG, 0, ts)
    fd = create(proc)
    with expect_errno(EINVAL):
        proc.mq_timedsend(fd, MSG, 1 << 20, ts)  # prio >= MQ_PRIO_MAX is EINVAL too, but later


def test_valid_far_timespec_then_bad_fd(proc: Proc) -> None:
    with expect_errno(EBADF):
        proc.mq_timedreceive(12345, MSGSIZE, FAR[1])


def test_expired_deadline_only_matters_when_blocking(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_timedsend(fd, MSG, 5, (0, 0))  # room: the expired deadline is never looked at
    assert proc.mq_timedreceive(fd, MSGSIZE, (1, 0)) == (MSG, 5)
    with expect_errno(ETIMEDOUT):
        proc.mq_timedreceive(fd, MSGSIZE, (0, 999_999_999))
    fill(proc, fd)
    with expect_errno(ETIMEDOUT):
        proc.mq_timedsend(fd, b"late", 0, proc.deadline(-3600.0))
    got = [proc.mq_receive(fd, MSGSIZE)[0] for _ in range(MAXMSG)]
    assert b"late" not in got
