"""msgsnd/msgrcv basics: round trips, truncation, E2BIG/ENOMSG, argument validation and the exact
order of EINVAL/EFAULT checks.

Linux counterpart: ipc/msg.c ksys_msgsnd/do_msgsnd, ksys_msgrcv/do_msgrcv, ipc/msgutil.c
load_msg/store_msg. gVisor counterpart: test/syscalls/linux/msgqueue.cc MsgOpSimple, MsgOpEmpty,
MsgOpReceiveMax, MsgOpTruncate, MsgOpInvalidArgs, MsgOpNoMsg, MsgOpNoMsgType, MsgOpTooBig.
"""

from __future__ import annotations

import os
import struct

from mqsentry.abi.linux.errno import E2BIG, EFAULT, EINVAL, ENOMSG
from mqsentry.abi.linux.ipc import IPC_NOWAIT
from mqsentry.abi.linux.msgqueue import MSG_NOERROR, MSGMAX
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.msgqueue import MSG_SIZE, TEXT, new_queue
from mqsentry.testsuite.targets.base import Target

#: A queue id that is not in use in a fresh namespace (index 12345 is never reached).
UNUSED_ID = 12345


# -- gVisor MsgOp* ------------------------------------------------------------------------------------

def test_simple(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    assert proc.msgrcv(q, MSG_SIZE + 1, 0, 0) == (1, TEXT)


def test_empty_message(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, b"")
    assert proc.msgrcv(q, MSG_SIZE + 1) == (1, b"")


def test_receive_buffer_larger_than_msgmax(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    assert proc.msgrcv(q, MSGMAX + 1) == (1, TEXT)


def test_truncate_with_msg_noerror(proc: Proc) -> None:
    q = new_queue(proc)
    data = bytes(b % 255 + 1 for b in os.urandom(MSG_SIZE))  # no zero bytes
    proc.msgsnd(q, 1, data)
    rcv = proc.alloc(8 + MSG_SIZE)
    assert proc.msgrcv_raw(q, rcv, MSG_SIZE - 1, 0, MSG_NOERROR) == MSG_SIZE - 1
    raw = proc.read(rcv, 8 + MSG_SIZE)
    assert struct.unpack_from("<q", raw)[0] == 1
    assert raw[8:8 + MSG_SIZE - 1] == data[:-1]
    assert raw[-1] == 0  # the byte after the truncated text is untouched
    ds = proc.msgstat(q)
    assert (ds.cbytes, ds.qnum) == (0, 0)  # the rest of the message is discarded


def test_invalid_args(proc: Proc) -> None:
    q = new_queue(proc)
    ok = proc.msgbuf(1, b"x")
    with expect_errno(EINVAL):
        proc.msgsnd_raw(-1, ok, 0)
    with expect_errno(EINVAL):
        proc.msgsnd_raw(q, ok, -1)
    with expect_errno(EINVAL):
        proc.msgsnd(q, -1, b"x")
    with expect_errno(EINVAL):
        proc.msgsnd(q, 0, b"x")
    rcv = proc.alloc(8 + 1)
    with expect_errno(EINVAL):
        proc.msgrcv_raw(-1, rcv, 1)
    with expect_errno(EINVAL):
        proc.msgrcv_raw(q, rcv, -1)


def test_no_message(proc: Proc) -> None:
    q = new_queue(proc)
    with expect_errno(ENOMSG):
        proc.msgrcv(q, MSG_SIZE + 1, 0, IPC_NOWAIT)


def test_no_message_of_type(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    with expect_errno(ENOMSG):
        proc.msgrcv(q, MSG_SIZE + 1, 2, IPC_NOWAIT)


def test_too_big(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    with expect_errno(E2BIG):
        proc.msgrcv(q, MSG_SIZE - 1)
    # The message stays queued.
    assert proc.msgstat(q).qnum == 1
    assert proc.msgrcv(q, MSG_SIZE) == (1, TEXT)


# -- Linux rules beyond gVisor's suite ------------------------------------------------------------------

def test_msgsnd_mtype_read_comes_first(target: Target, proc: Proc) -> None:
    q = new_queue(proc)
    # get_user(mtype) precedes every other check: size, id and the queue lookup.
    with expect_errno(EFAULT):
        proc.msgsnd_raw(q, 0, 100000)
    with expect_errno(EFAULT):
        proc.msgsnd_raw(-1, 0, 0)
    with expect_errno(EFAULT):
        proc.msgsnd_raw(UNUSED_ID, target.bad_addr, 1)


def test_msgsnd_einval_before_text_copy(proc: Proc) -> None:
    q = new_queue(proc)
    p = proc.end_of_mapping(8 + 100)  # mtype readable, text runs into the guard page
    proc.write(p, struct.pack("<q", 0))
    with expect_errno(EINVAL):  # mtype < 1 is checked before the text is copied in
        proc.msgsnd_raw(q, p, 100)
    proc.write(p, struct.pack("<q", 1))
    with expect_errno(EINVAL):  # size > msgmax, too
        proc.msgsnd_raw(q, p, MSGMAX + 1)


def test_msgsnd_text_fault(proc: Proc) -> None:
    q = new_queue(proc)
    p = proc.end_of_mapping(8 + 100)
    proc.write(p, struct.pack("<q", 1))
    with expect_errno(EFAULT):
        proc.msgsnd_raw(q, p, 100)
    # The copy-in precedes the queue lookup.
    with expect_errno(EFAULT):
        proc.msgsnd_raw(UNUSED_ID, p, 100)
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes, ds.lspid, ds.stime) == (0, 0, 0, 0)
    proc.msgsnd_raw(q, p, 99)  # one byte less fits in the mapping
    assert proc.msgstat(q).qnum == 1


def test_msgsnd_unknown_queue(proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.msgsnd(UNUSED_ID, 1, b"x")
    q = new_queue(proc)
    proc.msgctl_rmid(q)
    with expect_errno(EINVAL):
        proc.msgsnd(q, 1, b"x")


def test_msgrcv_unknown_queue(proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.msgrcv(UNUSED_ID, 10, 0, IPC_NOWAIT)


def test_msgrcv_negative_size(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, b"x")
    rcv = proc.alloc(64)
    for size in (-1, -(1 << 63)):
        with expect_errno(EINVAL):
            proc.msgrcv_raw(q, rcv, size, 0, IPC_NOWAIT | MSG_NOERROR)
    # Size is checked before the id.
    with expect_errno(EINVAL):
        proc.msgrcv_raw(UNUSED_ID, rcv, -1)
    assert proc.msgstat(q).qnum == 1


def test_msgrcv_copy_out_fault_loses_message(target: Target, proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, b"y" * 100)
    proc.msgsnd(q, 2, b"z" * 10)
    p = proc.end_of_mapping(8 + 100)  # mtype and 99 bytes fit, the 100th byte faults
    with expect_errno(EFAULT):
        proc.msgrcv_raw(q, p, 100)
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes) == (1, 10)  # the first message is gone
    with expect_errno(EFAULT):
        proc.msgrcv_raw(q, target.bad_addr, 100)
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes) == (0, 0)


def test_msgrcv_e2big_before_copy_out(target: Target, proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, TEXT)
    with expect_errno(E2BIG):
        proc.msgrcv_raw(q, target.bad_addr, MSG_SIZE - 1)
    with expect_errno(ENOMSG):  # nothing matches: no copy-out, no fault
        proc.msgrcv_raw(q, target.bad_addr, MSG_SIZE, 5, IPC_NOWAIT)
    assert proc.msgstat(q).qnum == 1


def test_msgrcv_returns_text_size_and_mtype(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, (1 << 63) - 1, b"max")
    assert proc.msgrcv(q, 3) == ((1 << 63) - 1, b"max")


def test_max_size_message_round_trip(proc: Proc) -> None:
    q = new_queue(proc)
    data = os.urandom(MSGMAX)
    proc.msgsnd(q, 3, data)
    assert proc.msgrcv(q, MSGMAX) == (3, data)
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes) == (0, 0)


def test_msgrcv_huge_size_is_fine(proc: Proc) -> None:
    # Any non-negative long is a valid buffer size; only the message's bytes are written.
    q = new_queue(proc)
    proc.msgsnd(q, 1, b"0123456789")
    p = proc.alloc(64)
    assert proc.msgrcv_raw(q, p, 1 << 40) == 10
    assert proc.read(p, 18) == struct.pack("<q", 1) + b"0123456789"
    proc.msgsnd(q, 2, b"abc")
    assert proc.msgrcv_raw(q, p, (1 << 63) - 1, 0, MSG_NOERROR) == 3


def test_msgsnd_huge_size_is_einval(proc: Proc) -> None:
    q = new_queue(proc)
    p = proc.msgbuf(1, b"x")
    for size in (1 << 32, 1 << 40, (1 << 63) - 1, 1 << 63):
        with expect_errno(EINVAL):
            proc.msgsnd_raw(q, p, size)
