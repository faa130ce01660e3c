"""SysV message-queue conformance tests (msgget/msgsnd/msgrcv/msgctl, /proc/sysvipc/msg, sysctls).

Linux counterpart: ipc/msg.c and ipc/util.c are the specification (docs/porting-map.md
names the functions); every test runs on the native target too, which is the
proof. gVisor counterpart: test/syscalls/linux/msgqueue.cc (all 34 ``MsgqueueTest`` cases are ported
here, rewritten in Python, plus the Linux rules that suite leaves out).

Each test gets a fresh IPC namespace, so keys are fixed constants and queues need no cleanup.
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.errno import ENOSYS
from mqsentry.abi.linux.ipc import IPC_NOWAIT, IPC_PRIVATE
from mqsentry.abi.linux.msgqueue import MSG_COPY, MSGMAX, MSGMNB
from mqsentry.testsuite.libc import LinuxError, Proc

#: A fixed key: every test runs in its own IPC namespace, so no ftok() is needed.
KEY = 0x4D53_4751  # "MSGQ"
#: gVisor's default message: 50 bytes of text.
MSG_SIZE = 50
TEXT = b"A message.".ljust(MSG_SIZE, b"\0")
#: Number of MSGMAX-sized messages that fill a default queue.
FULL_COUNT = MSGMNB // MSGMAX


def text(i: int) -> bytes:
    """A distinct 50-byte text for message ``i``."""
    return f"Message {i}.".encode().ljust(MSG_SIZE, b"\0")


def new_queue(proc: Proc, mode: int = 0o600) -> int:
    return proc.msgget(IPC_PRIVATE, mode)


def fill(proc: Proc, q: int) -> None:
    """Fill a default-sized queue with MSGMAX-byte messages so that the next send blocks."""
    big = b"x" * MSGMAX
    for _ in range(FULL_COUNT):
        proc.msgsnd(q, 1, big)


def require_msg_copy(proc: Proc) -> None:
    """Skip when the kernel lacks MSG_COPY (CONFIG_CHECKPOINT_RESTORE off: ENOSYS)."""
    q = new_queue(proc)
    proc.msgsnd(q, 1, b"probe")
    try:
        proc.msgrcv(q, 16, 0, MSG_COPY | IPC_NOWAIT)
    except LinuxError as e:
        if e.errno == ENOSYS:
            pytest.skip("MSG_COPY unsupported (kernel without CONFIG_CHECKPOINT_RESTORE)")
        raise
    finally:
        proc.msgctl_rmid(q)
