"""msgrcv MSG_COPY: index-based non-destructive reads, flag validation, the scratch copy loaded from the
user buffer before the queue lookup, E2BIG vs EINVAL with MSG_NOERROR.

Linux counterpart: ipc/msg.c do_msgrcv/prepare_copy/copy_msg (CONFIG_CHECKPOINT_RESTORE).
gVisor counterpart: test/syscalls/linux/msgqueue.cc MsgCopy, MsgCopyInvalidArgs, MsgCopyInvalidIndex,
MsgCopyTooBig.
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import E2BIG, EFAULT, EINVAL, ENOMSG
from mqsentry.abi.linux.ipc import IPC_NOWAIT
from mqsentry.abi.linux.msgqueue import MSG_COPY, MSG_EXCEPT, MSG_NOERROR
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.msgqueue import MSG_SIZE, TEXT, new_queue, require_msg_copy, text
from mqsentry.testsuite.targets.base import Target

COPY = MSG_COPY | IPC_NOWAIT
UNUSED_ID = 12345


# -- gVisor MsgCopy* ------------------------------------------------------------------------------------

def test_copy(proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    for i in range(1, 6):
        proc.msgsnd(q, i, text(i))
    for i in range(5):
        assert proc.msgrcv(q, MSG_SIZE + 1, i, COPY) == (i + 1, text(i + 1))
    for i in range(1, 6):
        assert proc.msgrcv(q, MSG_SIZE + 1) == (i, text(i))


def test_copy_invalid_args(proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    with expect_errno(EINVAL):
        proc.msgrcv(q, MSG_SIZE, 1, MSG_COPY)
    with expect_errno(EINVAL):
        proc.msgrcv(q, MSG_SIZE, 5, MSG_COPY | MSG_EXCEPT | IPC_NOWAIT)


def test_copy_invalid_index(proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    for idx in (-3, -1, 0, 5):
        with expect_errno(ENOMSG):
            proc.msgrcv(q, MSG_SIZE, idx, COPY)
    proc.msgsnd(q, 1, TEXT)
    for idx in (-1, 1):
        with expect_errno(ENOMSG):
            proc.msgrcv(q, MSG_SIZE, idx, COPY)


def test_copy_too_big(proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    with expect_errno(E2BIG):
        proc.msgrcv(q, MSG_SIZE - 1, 0, COPY)
    # MSG_NOERROR cannot truncate a copy: the scratch buffer is smaller than the message.
    with expect_errno(EINVAL):
        proc.msgrcv(q, MSG_SIZE - 1, 0, COPY | MSG_NOERROR)
    assert proc.msgstat(q).qnum == 1


# -- Linux rules beyond gVisor's suite ------------------------------------------------------------------

def test_copy_leaves_queue_state_alone(proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    proc.msgsnd(q, 4, TEXT)
    before = proc.msgstat(q)
    assert proc.msgrcv(q, MSG_SIZE, 0, COPY) == (4, TEXT)
    after = proc.msgstat(q)
    assert (after.qnum, after.cbytes, after.rtime, after.lrpid) == (1, MSG_SIZE, 0, 0)
    assert after == before


def test_copy_index_ignores_types(proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    for i, t in enumerate([7, 3, 7, 1]):
        proc.msgsnd(q, t, bytes([i]))
    assert [proc.msgrcv(q, 1, i, COPY) for i in range(4)] == [(7, b"\x00"), (3, b"\x01"), (7, b"\x02"),
                                                              (1, b"\x03")]


def test_copy_flag_checks_before_scratch_load(target: Target, proc: Proc) -> None:
    require_msg_copy(proc)
    # EINVAL for the id and size comes first, then the MSG_COPY flag rules; no memory is touched.
    with expect_errno(EINVAL):
        proc.msgrcv_raw(-1, target.bad_addr, 100, 0, COPY)
    with expect_errno(EINVAL):
        proc.msgrcv_raw(UNUSED_ID, target.bad_addr, 100, 0, MSG_COPY)
    with expect_errno(EINVAL):
        proc.msgrcv_raw(UNUSED_ID, target.bad_addr, 100, 0, COPY | MSG_EXCEPT)


def test_copy_scratch_load_faults_before_lookup(target: Target, proc: Proc) -> None:
    require_msg_copy(proc)
    # The scratch message is loaded from the user buffer before the queue is looked up.
    with expect_errno(EFAULT):
        proc.msgrcv_raw(UNUSED_ID, target.bad_addr, 100, 0, COPY)
    # Zero bytes to load: no fault, the lookup fails.
    with expect_errno(EINVAL):
        proc.msgrcv_raw(UNUSED_ID, target.bad_addr, 0, 0, COPY)
    # Without MSG_COPY nothing is read from the buffer before the lookup.
    with expect_errno(EINVAL):
        proc.msgrcv_raw(UNUSED_ID, target.bad_addr, 100, 0, IPC_NOWAIT)


def test_copy_scratch_load_reads_msgsz_bytes(proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    proc.msgsnd(q, 1, b"abc")
    # min(msgsz, msgmax) bytes from the start of the buffer must be readable, even though only
    # 8 + 3 bytes are written back.
    p = proc.end_of_mapping(40)  # 39 readable bytes
    with expect_errno(EFAULT):
        proc.msgrcv_raw(q, p, 40, 0, COPY)
    assert proc.msgrcv_raw(q, p, 39, 0, COPY) == 3
    assert proc.read(p, 11) == (1).to_bytes(8, "little") + b"abc"


def test_copy_scratch_is_capped_by_msgmax(target: Target, proc: Proc) -> None:
    require_msg_copy(proc)
    q = new_queue(proc)
    proc.msgsnd(q, 1, b"m" * 100)
    target.write_file("/proc/sys/kernel/msgmax", b"50")
    # The scratch message holds only msgmax bytes: a larger queued message cannot be copied.
    with expect_errno(EINVAL):
        proc.msgrcv(q, 200, 0, COPY)
    with expect_errno(EINVAL):
        proc.msgrcv(q, 200, 0, COPY | MSG_NOERROR)
    assert proc.msgrcv(q, 200) == (1, b"m" * 100)  # a normal receive is not capped


def test_copy_indexes_after_typed_receives(proc: Proc) -> None:
    """MSG_COPY counts only queued messages, in arrival order, however many holes typed receives left
    among them; sequential, backward and forward reads all agree as the queue changes between them."""
    require_msg_copy(proc)
    q = new_queue(proc)
    n = 1500
    expect = [(i % 3 + 1, i.to_bytes(4, "little")) for i in range(n)]
    for mtype, data in expect:
        proc.msgsnd(q, mtype, data)
    # Take every type-2 message from the first two thirds: holes all over the queue.
    taken = [e for e in expect[:1000] if e[0] == 2]
    for e in taken:
        assert proc.msgrcv(q, 4, 2, IPC_NOWAIT) == e
    live = [e for e in expect if e not in taken]
    for i in (0, 1, 2, 3, 500, 501, 1100, 7, len(live) - 1):
        assert proc.msgrcv(q, 4, i, COPY) == live[i], i
    for i, e in enumerate(live):  # the checkpoint walk: 0, 1, 2, ...
        assert proc.msgrcv(q, 4, i, COPY) == e
    # A removal between copies (a type-3 message in the middle) shifts the later indexes.
    third = next(e for e in live if e[0] == 3)
    assert proc.msgrcv(q, 4, 3, IPC_NOWAIT) == third
    live.remove(third)
    # A removal at the head, and an append at the tail.
    assert proc.msgrcv(q, 4) == live.pop(0)
    proc.msgsnd(q, 9, b"tail")
    live.append((9, b"tail"))
    for i in (len(live) - 1, 0, 1, 400, 401, 399, len(live) - 2):
        assert proc.msgrcv(q, 4, i, COPY) == live[i], i
    with expect_errno(ENOMSG):
        proc.msgrcv(q, 4, len(live), COPY)
    assert proc.msgstat(q).qnum == len(live)
    assert [proc.msgrcv(q, 4) for _ in range(len(live))] == live
