"""mq_timedsend/mq_timedreceive without blocking: order of checks (prio, timespec, fd, size, copy),
priorities and FIFO order, sizes, zero-length messages, O_NONBLOCK, lost messages on copy-out faults.

Linux counterpart: ipc/mqueue.c do_mq_timedsend/do_mq_timedreceive/msg_insert/msg_get, prepare_timeout.
gVisor counterpart: the refs/pull/6458 mq.cc SimpleSendReceive, SendReceiveBadFD, InvalidTime,
SendMsgSize, SendMaxMsgCount, SendMaxMsgSize, SendReceiveSeveral, Priority, NonBlocking,
RdOnlyWrOnlyRdWr.
"""

from __future__ import annotations

import random

import pytest

from mqsentry.abi.linux.errno import EAGAIN, EBADF, EFAULT, EINVAL, EMSGSIZE, ETIMEDOUT
from mqsentry.abi.linux.file import O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY
from mqsentry.abi.linux.mqueue import MQ_PRIO_MAX
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.mq import MAXMSG, MSG, MSGSIZE, NAME, create, status, text
from mqsentry.testsuite.targets.base import Target

# -- gVisor (unmerged stack) ------------------------------------------------------------------------------


def test_simple_send_receive(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, MSG, 1)
    assert proc.mq_receive(fd, MSGSIZE) == (MSG, 1)


def test_send_receive_bad_fd(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_close(fd)
    proc.mq_unlink(NAME)
    with expect_errno(EBADF):
        proc.mq_send(fd, b"Message.", 1)
    with expect_errno(EBADF):
        proc.mq_receive(fd, MSGSIZE)


@pytest.mark.parametrize("ts", [(-1, 10), (10, -1), (10, 1_000_000_000), (0, 2_000_000_000), (-1, -1)])
def test_invalid_time(proc: Proc, ts: tuple[int, int]) -> None:
    """The timespec is validated at entry, even when the call would not block: on a non-full queue
    for send, on a non-empty queue for receive."""
    fd = create(proc)
    with expect_errno(EINVAL):
        proc.mq_timedsend(fd, b"Message.", 1, ts)
    proc.mq_send(fd, b"queued", 0)
    with expect_errno(EINVAL):
        proc.mq_timedreceive(fd, MSGSIZE, ts)
    assert proc.mq_getattr(fd).curmsgs == 1
    # ... and on an empty queue, where the receive would block.
    proc.mq_receive(fd, MSGSIZE)
    with expect_errno(EINVAL):
        proc.mq_timedreceive(fd, MSGSIZE, ts)


def test_send_msg_size(proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EMSGSIZE):
        proc.mq_send(fd, b"M" * (MSGSIZE + 1), 1)
    # A buffer smaller than mq_msgsize is refused even on an empty queue.
    with expect_errno(EMSGSIZE):
        proc.mq_receive(fd, MSGSIZE - 1)
    proc.mq_send(fd, b"x", 1)
    with expect_errno(EMSGSIZE):
        proc.mq_receive(fd, 1)
    assert proc.mq_getattr(fd).curmsgs == 1


def test_send_max_msg_count(proc: Proc) -> None:
    fd = create(proc, oflag=O_RDWR | O_NONBLOCK, attr=(MAXMSG - 1, MSGSIZE))
    for _ in range(MAXMSG - 1):
        proc.mq_send(fd, MSG, 1)
    with expect_errno(EAGAIN):
        proc.mq_send(fd, MSG, 1)


def test_send_max_msg_size(proc: Proc) -> None:
    fd = create(proc, oflag=O_RDWR | O_NONBLOCK, attr=(MAXMSG, MSGSIZE - 1))
    proc.mq_send(fd, b"m" * (MSGSIZE - 1), 1)
    with expect_errno(EMSGSIZE):
        proc.mq_send(fd, b"m" * MSGSIZE, 1)
    # The receive buffer only has to hold mq_msgsize.
    assert proc.mq_receive(fd, MSGSIZE - 1) == (b"m" * (MSGSIZE - 1), 1)


def test_send_receive_several(proc: Proc) -> None:
    fd = create(proc)
    msgs = [f"Message {i}.".encode() for i in range(MAXMSG)]
    for m in msgs:
        proc.mq_send(fd, m, 1)
    for m in msgs:
        assert proc.mq_receive(fd, MSGSIZE) == (m, 1)


def test_priority(proc: Proc) -> None:
    fd = create(proc)
    msgs = [f"Message {i}.".encode() for i in range(MAXMSG)]
    for i, m in enumerate(msgs):
        proc.mq_send(fd, m, i)
    for i in reversed(range(MAXMSG)):
        assert proc.mq_receive(fd, MSGSIZE) == (msgs[i], i)


def test_non_blocking(proc: Proc) -> None:
    fd = create(proc, oflag=O_RDWR | O_NONBLOCK)
    with expect_errno(EAGAIN):
        proc.mq_receive(fd, MSGSIZE)
    for _ in range(MAXMSG):
        proc.mq_send(fd, b"", 1)
    with expect_errno(EAGAIN):
        proc.mq_send(fd, b"", 1)


def test_rdonly_wronly_rdwr(proc: Proc) -> None:
    wr = create(proc, oflag=O_WRONLY)
    rd = proc.mq_open(NAME, O_RDONLY)
    proc.mq_send(wr, MSG, 1)
    with expect_errno(EBADF):
        proc.mq_receive(wr, MSGSIZE)
    assert proc.mq_receive(rd, MSGSIZE) == (MSG, 1)
    with expect_errno(EBADF):
        proc.mq_send(rd, MSG, 1)


# -- order of checks ----------------------------------------------------------------------------------------


def test_many_priorities_interleaved(target: Target, proc: Proc) -> None:
    """Sends of many distinct (and some repeated) priorities interleaved with receives: every receive
    takes the oldest message of the highest priority, checked against a model of the queue. The
    phases climb above the top (as a receiver draining the top meets new, higher priorities), fall
    below it, repeat priorities and drain the queue to empty, so each path of the priority index and
    its node reuse is taken."""
    maxmsg = 64
    target.write_file("/proc/sys/fs/mqueue/msg_max", b"%d\n" % maxmsg)
    fd = create(proc, attr=(maxmsg, MSGSIZE))
    rng = random.Random(13)
    model: list[tuple[int, int]] = []  # (prio, sequence number) of the queued messages, oldest first
    seq = 0

    def send(prio: int) -> None:
        nonlocal seq
        proc.mq_send(fd, b"%d" % seq, prio)
        model.append((prio, seq))
        seq += 1

    def receive() -> None:
        prio, n = max(model, key=lambda m: (m[0], -m[1]))  # highest priority, then oldest
        model.remove((prio, n))
        assert proc.mq_receive(fd, MSGSIZE) == (b"%d" % n, prio)

    for phase in range(12):
        base = rng.randrange(MQ_PRIO_MAX - 200)
        for i in range(300):
            kind = (phase + i) % 4
            if not model or (len(model) < maxmsg and rng.random() < 0.55):
                top = max(p for p, _ in model) if model else base
                if kind == 0:  # just above the current top
                    prio = min(top + 1 + rng.randrange(3), MQ_PRIO_MAX - 1)
                elif kind == 1:  # anywhere
                    prio = rng.randrange(MQ_PRIO_MAX)
                elif kind == 2:  # a priority already queued, or one just freed
                    prio = rng.choice(model)[0] if model else base
                else:  # a narrow band, so nodes are freed and made again
                    prio = base + rng.randrange(40)
                send(prio)
            else:
                receive()
        while model:  # drain: the queue goes empty between phases
            receive()
    with expect_errno(ETIMEDOUT):  # nothing is left behind: an already-expired wait times out
        proc.mq_timedreceive(fd, MSGSIZE, (0, 0))


def test_prio_limit(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"top", MQ_PRIO_MAX - 1)
    for prio in (MQ_PRIO_MAX, MQ_PRIO_MAX + 1, 0xFFFF_FFFF):
        with expect_errno(EINVAL):
            proc.mq_send(fd, b"x", prio)
    assert proc.mq_receive(fd, MSGSIZE) == (b"top", MQ_PRIO_MAX - 1)


def test_prio_checked_before_fd(target: Target, proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.mq_send(-1, b"x", MQ_PRIO_MAX)
    with expect_errno(EINVAL):
        proc.mq_send(12345, b"x", MQ_PRIO_MAX)
    fd = create(proc, oflag=O_RDONLY)
    with expect_errno(EINVAL):
        proc.mq_send(fd, b"x" * (MSGSIZE + 1), MQ_PRIO_MAX)


def test_timeout_copied_in_before_prio_check(target: Target, proc: Proc) -> None:
    """The syscall entry copies in and validates the timespec before do_mq_timedsend checks the
    priority, so a bad pointer wins over a bad priority (an invalid value gives EINVAL either way)."""
    fd = create(proc)
    with expect_errno(EFAULT):
        proc.mq_timedsend(fd, b"x", MQ_PRIO_MAX, target.bad_addr)
    with expect_errno(EFAULT):
        proc.mq_timedsend(12345, b"x", MQ_PRIO_MAX, target.bad_addr)


def test_timeout_checked_before_fd(target: Target, proc: Proc) -> None:
    for fd in (-1, 12345):
        with expect_errno(EINVAL):
            proc.mq_timedsend(fd, b"x", 0, (0, 2_000_000_000))
        with expect_errno(EINVAL):
            proc.mq_timedreceive(fd, MSGSIZE, (0, 2_000_000_000))
        with expect_errno(EFAULT):
            proc.mq_timedsend(fd, b"x", 0, target.bad_addr)
        with expect_errno(EFAULT):
            proc.mq_timedreceive(fd, MSGSIZE, target.bad_addr)


def test_timeout_efault(target: Target, proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EFAULT):
        proc.mq_timedsend(fd, b"x", 0, target.bad_addr)
    with expect_errno(EFAULT):
        proc.mq_timedsend(fd, b"x", 0, proc.end_of_mapping(16))
    assert proc.mq_getattr(fd).curmsgs == 0
    proc.mq_send(fd, b"kept", 0)
    with expect_errno(EFAULT):
        proc.mq_timedreceive(fd, MSGSIZE, target.bad_addr)
    assert proc.mq_getattr(fd).curmsgs == 1


def test_ebadf_before_emsgsize(proc: Proc) -> None:
    wr = create(proc, oflag=O_WRONLY)
    rd = proc.mq_open(NAME, O_RDONLY)
    with expect_errno(EBADF):
        proc.mq_send(rd, b"x" * (MSGSIZE + 1))
    with expect_errno(EBADF):
        proc.mq_receive(wr, 1)


def test_non_mq_fd_is_ebadf(proc: Proc) -> None:
    ep = proc.epoll_create()
    with expect_errno(EBADF):
        proc.mq_send(ep, MSG)
    with expect_errno(EBADF):
        proc.mq_receive(ep, MSGSIZE)
    with expect_errno(EBADF):
        proc.mq_getattr(ep)
    with expect_errno(EBADF):
        proc.mq_notify(ep, None)


def test_send_message_efault(target: Target, proc: Proc) -> None:
    fd = create(proc)
    with expect_errno(EFAULT):
        proc.mq_timedsend(fd, target.bad_addr, 0, None, length=8)
    with expect_errno(EFAULT):
        proc.mq_timedsend(fd, proc.end_of_mapping(100), 0, None, length=100)
    # The size check comes first.
    with expect_errno(EMSGSIZE):
        proc.mq_timedsend(fd, target.bad_addr, 0, None, length=MSGSIZE + 1)
    assert proc.mq_getattr(fd).curmsgs == 0
    assert text(proc, fd) == status()


def test_receive_copy_out_fault_loses_message(target: Target, proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"first", 1)
    proc.mq_send(fd, b"second", 0)
    with expect_errno(EFAULT):
        proc.mq_timedreceive(fd, MSGSIZE, buf=target.bad_addr)
    assert proc.mq_getattr(fd).curmsgs == 1
    assert proc.mq_receive(fd, MSGSIZE) == (b"second", 0)


def test_receive_priority_fault_loses_message(target: Target, proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"first", 1)
    with expect_errno(EFAULT):
        proc.mq_timedreceive(fd, MSGSIZE, want_prio=target.bad_addr)
    assert proc.mq_getattr(fd).curmsgs == 0


# -- data ----------------------------------------------------------------------------------------------------


def test_priority_then_fifo(proc: Proc) -> None:
    fd = create(proc)
    sent = [(b"a", 1), (b"b", 5), (b"c", 1), (b"d", 5), (b"e", 0), (b"f", 32767), (b"g", 5)]
    for m, p in sent:
        proc.mq_send(fd, m, p)
    got = [proc.mq_receive(fd, MSGSIZE) for _ in sent]
    assert got == [(b"f", 32767), (b"b", 5), (b"d", 5), (b"g", 5), (b"a", 1), (b"c", 1), (b"e", 0)]


def test_zero_length_messages(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"", 3)
    proc.mq_send(fd, b"", 0)
    a = proc.mq_getattr(fd)
    assert a.curmsgs == 2
    assert text(proc, fd) == status(qsize=0)
    assert proc.mq_receive(fd, MSGSIZE) == (b"", 3)
    assert proc.mq_receive(fd, MSGSIZE) == (b"", 0)


def test_binary_payload_kept(proc: Proc) -> None:
    """gVisor's draft copied messages as C strings; the payload is bytes, NULs included."""
    fd = create(proc)
    payload = b"a\0b\0\xff" + bytes(range(256))
    proc.mq_send(fd, payload, 7)
    assert proc.mq_receive(fd, MSGSIZE) == (payload, 7)


def test_exact_msgsize(proc: Proc) -> None:
    fd = create(proc, attr=(2, 64))
    proc.mq_send(fd, b"x" * 64)
    assert proc.mq_receive(fd, 64) == (b"x" * 64, 0)
    proc.mq_send(fd, b"y" * 5)
    assert proc.mq_receive(fd, 1 << 20) == (b"y" * 5, 0)


def test_receive_without_priority_pointer(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, MSG, 9)
    assert proc.mq_timedreceive(fd, MSGSIZE, want_prio=False) == (MSG, None)


def test_qsize_counts_payload_bytes(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_send(fd, b"x" * 10, 1)
    proc.mq_send(fd, b"y" * 8, 2)
    assert text(proc, fd) == status(qsize=18)
    proc.mq_receive(fd, MSGSIZE)
    assert text(proc, fd) == status(qsize=10)


def test_nonblocking_fd_of_shared_queue(proc: Proc) -> None:
    """O_NONBLOCK belongs to the open file description, not the queue."""
    fd = create(proc)
    nb = proc.mq_open(NAME, O_RDWR | O_NONBLOCK)
    with expect_errno(EAGAIN):
        proc.mq_receive(nb, MSGSIZE)
    for _ in range(MAXMSG):
        proc.mq_send(fd, b"")
    with expect_errno(EAGAIN):
        proc.mq_send(nb, b"")
    assert proc.mq_getattr(fd).flags == 0


def test_send_and_receive_with_past_deadline_when_not_blocking(proc: Proc) -> None:
    """A deadline matters only when the call has to wait."""
    fd = create(proc)
    proc.mq_timedsend(fd, MSG, 0, (0, 1000))
    assert proc.mq_timedreceive(fd, MSGSIZE, (0, 0)) == (MSG, 0)


def test_huge_lengths(proc: Proc) -> None:
    """Lengths are size_t: a huge send length is EMSGSIZE, a huge receive length is fine (only the
    message is copied out)."""
    fd = create(proc)
    for n in (1 << 40, (1 << 63) + 5, (1 << 64) - 1):
        with expect_errno(EMSGSIZE):
            proc.mq_timedsend(fd, proc.buf(b"x" * 16), 0, None, length=n)
    proc.mq_send(fd, b"small", 6)
    buf = proc.alloc(64)
    assert proc.mq_timedreceive(fd, 1 << 40, buf=buf) == (b"small", 6)


def test_zero_length_receive_buffer(proc: Proc) -> None:
    fd = create(proc, attr=(1, 1))
    proc.mq_send(fd, b"")
    with expect_errno(EMSGSIZE):
        proc.mq_receive(fd, 0)
    assert proc.mq_receive(fd, 1) == (b"", 0)
