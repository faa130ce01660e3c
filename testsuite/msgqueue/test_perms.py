"""ipcperms for message queues: owner, creator, group (primary and supplementary) and other classes,
and the CAP_IPC_OWNER bypass, as msgsnd (write), msgrcv/IPC_STAT/MSG_STAT (read) see them.

Linux counterpart: ipc/util.c ipcperms, ipc/msg.c do_msgsnd/do_msgrcv/msgctl_stat.
gVisor counterpart: test/syscalls/linux/msgqueue.cc MsgOpPermissions, MsgCtlIpcStatWriteOnly.
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.capability import CAP_IPC_OWNER
from mqsentry.abi.linux.errno import EACCES
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_NOWAIT, IPC_PRIVATE
from mqsentry.abi.linux.msgqueue import MSG_COPY
from mqsentry.testsuite.libc import LinuxError, Proc, expect_errno
from mqsentry.testsuite.msgqueue import KEY, MSG_SIZE, TEXT, require_msg_copy
from mqsentry.testsuite.targets.base import Target


def can_write(p: Proc, q: int) -> bool:
    try:
        p.msgsnd(q, 1, b"w", IPC_NOWAIT)
        return True
    except LinuxError as e:
        assert e.errno == EACCES, str(e)
        return False


def can_read(p: Proc, q: int) -> bool:
    """Read permission, probed without consuming anything (IPC_STAT needs S_IRUGO like msgrcv)."""
    try:
        p.msgctl_stat(q)
        return True
    except LinuxError as e:
        assert e.errno == EACCES, str(e)
        return False


# -- gVisor MsgOpPermissions, MsgCtlIpcStatWriteOnly ---------------------------------------------------

def test_op_permissions_without_cap_ipc_owner(proc: Proc) -> None:
    proc.drop_cap(CAP_IPC_OWNER)
    q = proc.msgget(IPC_PRIVATE, 0o000)
    with expect_errno(EACCES):
        proc.msgsnd(q, 1, TEXT)
    with expect_errno(EACCES):
        proc.msgrcv(q, MSG_SIZE, 0, 0)


def test_op_permissions_msg_copy_probe(proc: Proc) -> None:
    """The MSG_COPY leg of MsgOpPermissions only where the kernel has MSG_COPY at all."""
    require_msg_copy(proc)
    proc.drop_cap(CAP_IPC_OWNER)
    q = proc.msgget(IPC_PRIVATE, 0o000)
    with expect_errno(EACCES):
        proc.msgrcv(q, MSG_SIZE, 0, MSG_COPY | IPC_NOWAIT)


def test_ipc_stat_write_only(proc: Proc) -> None:
    proc.drop_cap(CAP_IPC_OWNER)
    q = proc.msgget(IPC_PRIVATE, 0o200)
    with expect_errno(EACCES):
        proc.msgctl_stat(q)
    proc.msgsnd(q, 1, b"ok")  # write is granted


# -- classes ------------------------------------------------------------------------------------------

def test_other_class(target: Target, proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o640)
    other = Proc(target.spawn(uid=1000, gid=1000))
    assert not can_write(other, q)
    assert not can_read(other, q)
    with expect_errno(EACCES):
        other.msgrcv(q, 10, 0, IPC_NOWAIT)  # EACCES, not ENOMSG: permissions come first
    proc.msgctl_set(q, mode=0o646)
    assert can_write(other, q)
    assert can_read(other, q)


def test_owner_class_after_ipc_set_uid(target: Target, proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    proc.msgctl_set(q, uid=1000, gid=3000)
    owner = Proc(target.spawn(uid=1000, gid=1000))
    assert can_write(owner, q) and can_read(owner, q)
    assert owner.msgrcv(q, 1) == (1, b"w")


def test_creator_keeps_owner_class(target: Target) -> None:
    creator = Proc(target.spawn(uid=1000, gid=1000))
    q = creator.msgget(KEY, IPC_CREAT | 0o600)
    creator.msgctl_set(q, uid=2000, gid=2000)  # give the queue away
    ds = creator.msgstat(q)
    assert (ds.uid, ds.gid, ds.cuid, ds.cgid) == (2000, 2000, 1000, 1000)
    assert can_write(creator, q)  # euid == cuid still selects the owner bits
    new_owner = Proc(target.spawn(uid=2000, gid=2000))
    assert can_write(new_owner, q) and can_read(new_owner, q)


def test_group_class_via_gid_and_cgid(target: Target, proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o640)  # cgid 0
    proc.msgctl_set(q, gid=3000)
    by_gid = Proc(target.spawn(uid=1000, gid=3000))
    assert can_read(by_gid, q) and not can_write(by_gid, q)
    by_cgid = Proc(target.spawn(uid=1001, gid=0))
    assert can_read(by_cgid, q) and not can_write(by_cgid, q)
    stranger = Proc(target.spawn(uid=1002, gid=1002))
    assert not can_read(stranger, q)


def test_group_class_via_supplementary_group(target: Target, proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o620)
    proc.msgctl_set(q, gid=3000)
    member = Proc(target.spawn(uid=1000, gid=1000, groups=(5, 3000)))
    assert can_write(member, q) and not can_read(member, q)


def test_owner_class_is_exclusive(target: Target, proc: Proc) -> None:
    # The owner gets only the owner bits even if "other" would grant more.
    q = proc.msgget(KEY, IPC_CREAT | 0o066)
    proc.msgctl_set(q, uid=1000, gid=1000)
    owner = Proc(target.spawn(uid=1000, gid=1000))
    assert not can_write(owner, q) and not can_read(owner, q)
    # ...and a group member only the group bits.
    proc.msgctl_set(q, uid=0, gid=1000, mode=0o606)
    assert not can_write(owner, q) and not can_read(owner, q)


@pytest.mark.parametrize("mode", [0o000, 0o600])
def test_cap_ipc_owner_bypass(target: Target, proc: Proc, mode: int) -> None:
    q = proc.msgget(KEY, IPC_CREAT | mode)
    privileged = Proc(target.spawn(uid=1000, gid=1000, caps=1 << CAP_IPC_OWNER))
    privileged.msgsnd(q, 7, b"hi")
    assert privileged.msgrcv(q, 10) == (7, b"hi")
    assert privileged.msgstat(q).mode == mode
