"""msgget: keys, IPC_CREAT/IPC_EXCL, IPC_PRIVATE, and the permission request carried by msgflg.

Linux counterpart: ipc/msg.c ksys_msgget, ipc/util.c ipcget_new/ipcget_public/ipcperms.
gVisor counterpart: test/syscalls/linux/msgqueue.cc MsgGet, MsgGetFail, MsgGetIpcPrivate.
"""

from __future__ import annotations

from mqsentry.abi.linux.capability import CAP_IPC_OWNER
from mqsentry.abi.linux.errno import EACCES, EEXIST, ENOENT
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_PRIVATE
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.msgqueue import KEY
from mqsentry.testsuite.targets.base import Target

# -- gVisor MsgGet, MsgGetFail, MsgGetIpcPrivate ------------------------------------------------------

def test_msgget_create_then_lookup(proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT)
    assert proc.msgget(KEY, 0) == q


def test_msgget_fail(proc: Proc) -> None:
    with expect_errno(ENOENT):
        proc.msgget(KEY, 0)
    proc.msgget(KEY, IPC_CREAT)
    with expect_errno(EEXIST):
        proc.msgget(KEY, IPC_CREAT | IPC_EXCL)


def test_msgget_ipc_private_always_new(proc: Proc) -> None:
    a = proc.msgget(IPC_PRIVATE, 0)
    b = proc.msgget(IPC_PRIVATE, 0)
    assert a != b
    # IPC_PRIVATE is never entered in the key table: IPC_EXCL cannot collide with it.
    c = proc.msgget(IPC_PRIVATE, IPC_CREAT | IPC_EXCL | 0o600)
    assert c not in (a, b)
    assert proc.msgstat(c).key == IPC_PRIVATE


# -- Linux rules beyond gVisor's suite ------------------------------------------------------------------

def test_msgget_create_sets_identity_and_mode(target: Target) -> None:
    p = Proc(target.spawn(uid=1000, gid=2000))
    q = p.msgget(KEY, IPC_CREAT | IPC_NOWAIT | 0o7640)  # only the 0777 bits become the mode
    ds = p.msgstat(q)
    assert (ds.key, ds.uid, ds.gid, ds.cuid, ds.cgid) == (KEY, 1000, 2000, 1000, 2000)
    assert ds.mode == 0o640


def test_msgget_negative_key(proc: Proc) -> None:
    q = proc.msgget(-5, IPC_CREAT | 0o600)
    assert proc.msgget(-5, 0) == q
    assert proc.msgstat(q).key == -5


def test_msgget_existing_key_ignores_ipc_creat(proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    assert proc.msgget(KEY, IPC_CREAT | 0o644) == q
    assert proc.msgstat(q).mode == 0o600  # not re-created, mode unchanged


def test_msgget_flags_are_a_permission_request(target: Target, proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    other = Proc(target.spawn(uid=1000, gid=1000))
    # No mode bits requested: always passes, whatever the queue's mode.
    assert other.msgget(KEY, 0) == q
    assert other.msgget(KEY, IPC_CREAT) == q
    for req in (0o600, 0o400, 0o200, 0o004, 0o040):
        with expect_errno(EACCES):
            other.msgget(KEY, req)
    # EEXIST is decided before the permission check.
    with expect_errno(EEXIST):
        other.msgget(KEY, IPC_CREAT | IPC_EXCL | 0o600)
    # The owner asking for exactly what it has passes.
    assert proc.msgget(KEY, 0o600) == q


def test_msgget_request_is_folded_over_classes(target: Target, proc: Proc) -> None:
    # requested = (flg >> 6 | flg >> 3 | flg) & 7: asking for "other write" (0o002) on a queue that
    # grants the owner rw- and others r-- is a write request against the "other" class -> EACCES;
    # asking for "owner read" (0o400) passes since others may read.
    q = proc.msgget(KEY, IPC_CREAT | 0o604)
    other = Proc(target.spawn(uid=1000, gid=1000))
    assert other.msgget(KEY, 0o400) == q
    assert other.msgget(KEY, 0o004) == q
    with expect_errno(EACCES):
        other.msgget(KEY, 0o002)


def test_msgget_cap_ipc_owner_bypasses_request(target: Target, proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o000)
    privileged = Proc(target.spawn(uid=1000, gid=1000, caps=1 << CAP_IPC_OWNER))
    assert privileged.msgget(KEY, 0o666) == q
    proc.drop_cap(CAP_IPC_OWNER)
    with expect_errno(EACCES):
        proc.msgget(KEY, 0o600)  # root without CAP_IPC_OWNER is just the owner of a 0000 queue
    assert proc.msgget(KEY, 0) == q


def test_msgget_unknown_flag_bits_ignored(proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600 | 0x10000 | 0x40000000)
    assert proc.msgstat(q).mode == 0o600
    assert proc.msgget(KEY, 0x10000) == q
