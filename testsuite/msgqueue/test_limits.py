"""Limits: msgmax, msg_qbytes (a byte limit *and* a message-count limit), kernel.msg{max,mnb,mni}
sysctls and their per-namespace defaults.

Linux counterpart: ipc/msg.c msg_fits_inqueue/do_msgsnd/newque, ipc/ipc_sysctl.c, ipc/util.c
ipc_addid. gVisor counterpart: test/syscalls/linux/msgqueue.cc MsgOpLimits.
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import EAGAIN, EINVAL, ENOSPC
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_NOWAIT, IPC_PRIVATE
from mqsentry.abi.linux.msgqueue import MSGMAX, MSGMNB, MSGMNI
from mqsentry.testsuite.libc import LinuxError, Proc, expect_errno
from mqsentry.testsuite.msgqueue import FULL_COUNT, KEY, new_queue
from mqsentry.testsuite.targets.base import Target


def sysctl(target: Target, name: str) -> int:
    return int(target.read_file(f"/proc/sys/kernel/{name}").decode())


# -- gVisor MsgOpLimits ---------------------------------------------------------------------------------

def test_op_limits(proc: Proc) -> None:
    q = new_queue(proc)
    with expect_errno(EINVAL):
        proc.msgsnd(q, 1, b"x" * (MSGMAX + 1))
    big = b"x" * MSGMAX
    for _ in range(FULL_COUNT):
        proc.msgsnd(q, 1, big)
    with expect_errno(EAGAIN):
        proc.msgsnd(q, 1, big, IPC_NOWAIT)


# -- Linux rules beyond gVisor's suite ------------------------------------------------------------------

def test_sysctl_defaults(target: Target) -> None:
    assert sysctl(target, "msgmax") == MSGMAX
    assert sysctl(target, "msgmnb") == MSGMNB
    assert sysctl(target, "msgmni") == MSGMNI
    assert target.read_file("/proc/sys/kernel/msg_next_id") == b"-1\n"


def test_qbytes_limits_message_count(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=5)
    for _ in range(5):
        proc.msgsnd(q, 1, b"", IPC_NOWAIT)
    with expect_errno(EAGAIN):
        proc.msgsnd(q, 1, b"", IPC_NOWAIT)
    ds = proc.msgstat(q)
    assert (ds.qnum, ds.cbytes, ds.qbytes) == (5, 0, 5)


def test_qbytes_limits_bytes_and_count_together(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=10)
    proc.msgsnd(q, 1, b"123456", IPC_NOWAIT)
    proc.msgsnd(q, 1, b"1234", IPC_NOWAIT)  # exactly 10 bytes: fits
    with expect_errno(EAGAIN):
        proc.msgsnd(q, 1, b"1", IPC_NOWAIT)
    proc.msgrcv(q, 10)
    proc.msgsnd(q, 1, b"12345", IPC_NOWAIT)
    with expect_errno(EAGAIN):
        proc.msgsnd(q, 1, b"12", IPC_NOWAIT)


def test_message_larger_than_qbytes_never_fits(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=100)
    with expect_errno(EAGAIN):
        proc.msgsnd(q, 1, b"x" * 101, IPC_NOWAIT)
    proc.msgsnd(q, 1, b"x" * 100, IPC_NOWAIT)


def test_qbytes_zero_blocks_everything(proc: Proc) -> None:
    q = new_queue(proc)
    proc.msgctl_set(q, qbytes=0)
    with expect_errno(EAGAIN):
        proc.msgsnd(q, 1, b"", IPC_NOWAIT)


def test_msgmax_sysctl(target: Target, proc: Proc) -> None:
    q = new_queue(proc)
    target.write_file("/proc/sys/kernel/msgmax", b"100")
    assert sysctl(target, "msgmax") == 100
    proc.msgsnd(q, 1, b"x" * 100)
    with expect_errno(EINVAL):
        proc.msgsnd(q, 1, b"x" * 101)
    assert proc.msgctl_info()[1]["msgmax"] == 100
    target.write_file("/proc/sys/kernel/msgmax", b"20000")
    proc.msgsnd(q, 1, b"x" * 10000)  # above MSGMAX, below qbytes


def test_msgmnb_sysctl(target: Target, proc: Proc) -> None:
    old = new_queue(proc)
    target.write_file("/proc/sys/kernel/msgmnb", b"1000")
    assert sysctl(target, "msgmnb") == 1000
    q = new_queue(proc)
    assert proc.msgstat(q).qbytes == 1000
    assert proc.msgstat(old).qbytes == MSGMNB  # existing queues keep theirs
    proc.msgsnd(q, 1, b"x" * 1000, IPC_NOWAIT)
    with expect_errno(EAGAIN):
        proc.msgsnd(q, 1, b"y", IPC_NOWAIT)
    assert proc.msgctl_info()[1]["msgmnb"] == 1000


def test_msgmni_limit(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/kernel/msgmni", b"2")
    assert sysctl(target, "msgmni") == 2
    a = proc.msgget(KEY, IPC_CREAT | 0o600)
    proc.msgget(IPC_PRIVATE, 0o600)
    with expect_errno(ENOSPC):
        proc.msgget(IPC_PRIVATE, 0o600)
    with expect_errno(ENOSPC):
        proc.msgget(KEY + 1, IPC_CREAT | 0o600)
    assert proc.msgget(KEY, IPC_CREAT | 0o600) == a  # lookups still work
    proc.msgctl_rmid(a)
    proc.msgget(IPC_PRIVATE, 0o600)
    assert proc.msgctl_info()[1]["msgmni"] == 2


def test_msgmni_zero(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/kernel/msgmni", b"0")
    with expect_errno(ENOSPC):
        proc.msgget(IPC_PRIVATE, 0o600)


def expect_write_einval(target: Target, name: str, value: bytes) -> None:
    try:
        target.write_file(f"/proc/sys/kernel/{name}", value)
    except LinuxError as e:
        assert e.errno == EINVAL, str(e)
    else:
        raise AssertionError(f"writing {value!r} to kernel.{name} succeeded")


def test_sysctl_ranges(target: Target) -> None:
    for name in ("msgmax", "msgmnb", "msgmni"):
        expect_write_einval(target, name, b"-1")
        expect_write_einval(target, name, b"abc")
    expect_write_einval(target, "msgmax", b"2147483648")
    expect_write_einval(target, "msgmni", b"32769")  # above IPCMNI
    assert (sysctl(target, "msgmax"), sysctl(target, "msgmnb"), sysctl(target, "msgmni")) == (MSGMAX, MSGMNB, MSGMNI)
    target.write_file("/proc/sys/kernel/msgmni", b"32768")
    target.write_file("/proc/sys/kernel/msgmax", b"2147483647")
    target.write_file("/proc/sys/kernel/msgmnb", b"0")
    assert (sysctl(target, "msgmax"), sysctl(target, "msgmnb"), sysctl(target, "msgmni")) == (2147483647, 0, 32768)


def test_auto_msgmni_is_inert(target: Target) -> None:
    assert target.read_file("/proc/sys/kernel/auto_msgmni") == b"0\n"
    target.write_file("/proc/sys/kernel/auto_msgmni", b"1")  # accepted, only logs
    assert target.read_file("/proc/sys/kernel/auto_msgmni") == b"0\n"
    assert sysctl(target, "msgmni") == MSGMNI

