"""msgrcv message selection by msgtyp: exact type, MSG_EXCEPT, negative types (lowest type not above
abs(msgtyp), first-in among equals), LONG_MIN.

Linux counterpart: ipc/msg.c convert_mode/testmsg/find_msg. gVisor counterpart:
test/syscalls/linux/msgqueue.cc MsgRcvType, MsgExcept, MsgRcvTypeNegative.
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import ENOMSG
from mqsentry.abi.linux.ipc import IPC_NOWAIT
from mqsentry.abi.linux.msgqueue import MSG_EXCEPT
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.msgqueue import MSG_SIZE, TEXT, new_queue, text

LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)


def drain(proc: Proc, q: int, msgtyp: int, flags: int = 0) -> list[tuple[int, bytes]]:
    """Receive with (msgtyp, flags) until ENOMSG."""
    out = []
    while True:
        try:
            out.append(proc.msgrcv(q, 64, msgtyp, flags | IPC_NOWAIT))
        except Exception as e:
            assert getattr(e, "errno", None) == ENOMSG, str(e)
            return out


# -- gVisor MsgRcvType, MsgExcept, MsgRcvTypeNegative ---------------------------------------------------

def test_receive_by_type_in_reverse(proc: Proc) -> None:
    q = new_queue(proc)
    for i in range(1, 10):
        proc.msgsnd(q, i, text(i))
    for i in range(9, 0, -1):
        assert proc.msgrcv(q, MSG_SIZE + 1, i) == (i, text(i))


def test_msg_except(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 1, text(1))
    proc.msgsnd(q, 2, text(2))
    assert proc.msgrcv(q, MSG_SIZE + 1, 2, MSG_EXCEPT) == (1, text(1))
    assert proc.msgrcv(q, MSG_SIZE + 1, 1, MSG_EXCEPT) == (2, text(2))


def test_negative_type(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 2, TEXT)
    with expect_errno(ENOMSG):
        proc.msgrcv(q, MSG_SIZE + 1, -1, IPC_NOWAIT)
    assert proc.msgrcv(q, MSG_SIZE + 1, -3) == (2, TEXT)


# -- Linux rules beyond gVisor's suite ------------------------------------------------------------------

def test_negative_type_equal_to_abs_is_selected(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 2, TEXT)
    assert proc.msgrcv(q, MSG_SIZE, -2, IPC_NOWAIT) == (2, TEXT)


def test_negative_type_lowest_wins_fifo_among_equals(proc: Proc) -> None:
    q = new_queue(proc)
    for i, t in enumerate([5, 3, 4, 3, 1, 6, 1]):
        proc.msgsnd(q, t, bytes([i]))
    assert drain(proc, q, -5) == [(1, b"\x04"), (1, b"\x06"), (3, b"\x01"), (3, b"\x03"), (4, b"\x02"),
                                  (5, b"\x00")]
    assert drain(proc, q, 0) == [(6, b"\x05")]


def test_negative_type_skips_larger_types(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 10, b"a")
    proc.msgsnd(q, 3, b"b")
    proc.msgsnd(q, 7, b"c")
    assert proc.msgrcv(q, 1, -8, IPC_NOWAIT) == (3, b"b")
    assert proc.msgrcv(q, 1, -8, IPC_NOWAIT) == (7, b"c")
    with expect_errno(ENOMSG):
        proc.msgrcv(q, 1, -8, IPC_NOWAIT)


def test_long_min_is_long_max(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, LONG_MAX, b"max")
    proc.msgsnd(q, 9, b"nine")
    proc.msgsnd(q, 2, b"two")
    assert drain(proc, q, LONG_MIN) == [(2, b"two"), (9, b"nine"), (LONG_MAX, b"max")]


def test_long_max_negative(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, LONG_MAX, b"max")
    proc.msgsnd(q, 1, b"one")
    assert drain(proc, q, -LONG_MAX) == [(1, b"one"), (LONG_MAX, b"max")]


def test_type_zero_is_fifo(proc: Proc) -> None:
    q = new_queue(proc)
    for i, t in enumerate([3, 1, 2, 1]):
        proc.msgsnd(q, t, bytes([i]))
    assert drain(proc, q, 0) == [(3, b"\x00"), (1, b"\x01"), (2, b"\x02"), (1, b"\x03")]


def test_positive_type_fifo_among_equals(proc: Proc) -> None:
    q = new_queue(proc)
    for i, t in enumerate([2, 1, 2, 3, 2]):
        proc.msgsnd(q, t, bytes([i]))
    assert drain(proc, q, 2) == [(2, b"\x00"), (2, b"\x02"), (2, b"\x04")]
    assert drain(proc, q, 0) == [(1, b"\x01"), (3, b"\x03")]


def test_msg_except_fifo(proc: Proc) -> None:
    q = new_queue(proc)
    for i, t in enumerate([1, 3, 1, 2]):
        proc.msgsnd(q, t, bytes([i]))
    assert drain(proc, q, 1, MSG_EXCEPT) == [(3, b"\x01"), (2, b"\x03")]
    with expect_errno(ENOMSG):
        proc.msgrcv(q, 1, 1, MSG_EXCEPT | IPC_NOWAIT)


def test_msg_except_ignored_for_zero_and_negative(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgsnd(q, 2, b"a")
    proc.msgsnd(q, 1, b"b")
    # msgtyp 0 with MSG_EXCEPT: still "the first message".
    assert proc.msgrcv(q, 1, 0, MSG_EXCEPT | IPC_NOWAIT) == (2, b"a")
    proc.msgsnd(q, 3, b"c")
    # msgtyp < 0 with MSG_EXCEPT: still "the lowest type <= abs(msgtyp)".
    assert proc.msgrcv(q, 1, -3, MSG_EXCEPT | IPC_NOWAIT) == (1, b"b")
    assert proc.msgrcv(q, 1, -3, MSG_EXCEPT | IPC_NOWAIT) == (3, b"c")
