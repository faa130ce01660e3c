"""Credentials: the setresuid/setresgid/setgroups families and capget/capset, per thread.

Linux counterpart: kernel/sys.c (``__sys_setresuid``, ``__sys_setresgid``, getres*id), kernel/groups.c
(setgroups/getgroups), kernel/capability.c (capget/capset, ``cap_validate_magic``) and
security/commoncap.c (``cap_task_fix_setuid``, ``cap_capset``). gVisor counterpart:
test/syscalls/linux/uidgid.cc and capabilities.cc (ideas only).

Raw syscalls change only the calling thread's credentials; the tests use threads to show it.
"""

from __future__ import annotations

import struct

import pytest

from mqsentry.abi.linux.capability import (
    CAP_DATA,
    CAP_IPC_OWNER,
    CAP_KILL,
    CAP_SETGID,
    CAP_SETUID,
    CAP_SYS_ADMIN,
    LINUX_CAPABILITY_VERSION_1,
    LINUX_CAPABILITY_VERSION_3,
)
from mqsentry.abi.linux.errno import EFAULT, EINVAL, EPERM, ESRCH
from mqsentry.testsuite.kernel import NO_SUCH_PID, getgroups, getresgid, getresuid
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target

NO_ID = -1


def bit(cap: int) -> int:
    return 1 << cap


# -- identity after spawn ------------------------------------------------------------------------------

def test_spawned_ids_and_groups(target: Target) -> None:
    p = Proc(target.spawn(uid=1000, gid=2000, groups=(3001, 3000)))
    assert getresuid(p) == (1000, 1000, 1000)
    assert getresgid(p) == (2000, 2000, 2000)
    assert (p.getuid(), p.geteuid(), p.getgid(), p.getegid()) == (1000, 1000, 2000, 2000)
    assert getgroups(p) == [3000, 3001]  # the kernel keeps the list sorted
    assert p.capget() == (0, 0, 0)  # a non-root process starts without capabilities


def test_root_starts_with_effective_equal_to_permitted(proc: Proc) -> None:
    eff, perm, inh = proc.capget()
    assert eff == perm and inh == 0
    for cap in (CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_IPC_OWNER, CAP_SYS_ADMIN):
        assert perm & bit(cap)


def test_spawn_with_explicit_caps(target: Target) -> None:
    p = Proc(target.spawn(uid=1000, gid=1000, caps=bit(CAP_IPC_OWNER) | bit(CAP_KILL)))
    assert p.capget() == (bit(CAP_IPC_OWNER) | bit(CAP_KILL), bit(CAP_IPC_OWNER) | bit(CAP_KILL), 0)
    r = Proc(target.spawn(caps=bit(CAP_SETUID)))
    assert r.capget() == (bit(CAP_SETUID), bit(CAP_SETUID), 0)


# -- getgroups ---------------------------------------------------------------------------------------------

def test_getgroups_sizes(target: Target) -> None:
    p = Proc(target.spawn(uid=1, gid=1, groups=(7, 8, 9)))
    assert p.call("getgroups", 0, 0) == 3  # size 0 only counts, the pointer is not touched
    with expect_errno(EINVAL):
        p.call("getgroups", 2, p.alloc(8))
    with expect_errno(EINVAL):
        p.call("getgroups", -1 & 0xFFFFFFFF, p.alloc(64))
    with expect_errno(EFAULT):
        p.call("getgroups", 3, target.bad_addr)
    buf = p.alloc(64)
    assert p.call("getgroups", 16, buf) == 3
    assert struct.unpack("<3I", p.read(buf, 12)) == (7, 8, 9)


def test_getgroups_empty(proc: Proc) -> None:
    assert proc.call("getgroups", 0, 0) == 0
    assert proc.call("getgroups", 4, proc.target.bad_addr) == 0  # nothing to copy, no fault


# -- setresuid -----------------------------------------------------------------------------------------------

def test_setresuid_from_root_to_user_drops_permitted_and_effective(proc: Proc) -> None:
    proc.setresuid(1000, 1000, 1000)
    assert getresuid(proc) == (1000, 1000, 1000)
    assert proc.capget() == (0, 0, 0)
    with expect_errno(EPERM):
        proc.setresuid(0, 0, 0)  # no way back


def test_setresuid_euid_only_drops_effective_and_switching_back_restores_it(proc: Proc) -> None:
    _, perm, _ = proc.capget()
    proc.setresuid(NO_ID, 1000, NO_ID)
    assert getresuid(proc) == (0, 1000, 0)
    assert proc.capget() == (0, perm, 0)
    assert proc.geteuid() == 1000
    proc.setresuid(NO_ID, 0, NO_ID)  # 0 is the real and saved uid: allowed without CAP_SETUID
    assert proc.capget() == (perm, perm, 0)


def test_setresuid_keeping_a_root_saved_uid_keeps_permitted(proc: Proc) -> None:
    _, perm, _ = proc.capget()
    proc.setresuid(1000, 1000, 0)
    assert getresuid(proc) == (1000, 1000, 0)
    assert proc.capget() == (0, perm, 0)
    proc.setresuid(NO_ID, 0, NO_ID)
    assert proc.capget() == (perm, perm, 0)


def test_setresuid_unprivileged(target: Target) -> None:
    p = Proc(target.spawn(uid=1000, gid=1000))
    with expect_errno(EPERM):
        p.setresuid(2000, NO_ID, NO_ID)
    with expect_errno(EPERM):
        p.setresuid(NO_ID, 0, NO_ID)
    with expect_errno(EPERM):
        p.setresuid(NO_ID, NO_ID, 2000)
    p.setresuid(1000, 1000, 1000)  # a no-op is always allowed
    p.setresuid(NO_ID, NO_ID, NO_ID)
    assert getresuid(p) == (1000, 1000, 1000)


def test_setresuid_permutes_own_ids_without_cap(proc: Proc) -> None:
    proc.setresuid(1000, 2000, 3000)
    proc.setresuid(3000, 1000, 2000)  # only ids it already has
    assert getresuid(proc) == (3000, 1000, 2000)
    with expect_errno(EPERM):
        proc.setresuid(4000, NO_ID, NO_ID)


def test_setresuid_with_cap_setuid_between_users_keeps_caps(target: Target) -> None:
    p = Proc(target.spawn(uid=1000, gid=1000, caps=bit(CAP_SETUID)))
    p.setresuid(2000, 2000, 2000)
    assert getresuid(p) == (2000, 2000, 2000)
    # No uid went from or to 0, so cap_task_fix_setuid leaves the sets alone.
    assert p.capget() == (bit(CAP_SETUID), bit(CAP_SETUID), 0)


def test_setresuid_needs_cap_setuid_in_effective_set(proc: Proc) -> None:
    proc.drop_cap(CAP_SETUID)
    with expect_errno(EPERM):
        proc.setresuid(1000, 1000, 1000)
    assert getresuid(proc) == (0, 0, 0)


def test_credentials_are_per_thread(proc: Proc) -> None:
    th = proc.thread()
    th.setresuid(1000, 1000, 1000)
    assert getresuid(th) == (1000, 1000, 1000)
    assert getresuid(proc) == (0, 0, 0)
    assert th.capget() == (0, 0, 0)
    assert proc.capget()[0] != 0


def test_new_thread_and_fork_copy_the_creating_threads_credentials(proc: Proc) -> None:
    th = proc.thread()
    th.setresuid(NO_ID, 1000, NO_ID)
    th2 = th.thread()
    child = th.fork()
    for p in (th2, child):
        assert getresuid(p) == (0, 1000, 0)
        assert p.capget()[0] == 0


# -- setresgid / setgroups ----------------------------------------------------------------------------------

def test_setresgid(target: Target) -> None:
    root = Proc(target.spawn())
    root.setresgid(10, 20, 30)
    assert getresgid(root) == (10, 20, 30)
    assert root.getegid() == 20
    user = Proc(target.spawn(uid=1000, gid=1000))
    with expect_errno(EPERM):
        user.setresgid(2000, NO_ID, NO_ID)
    user.setresgid(NO_ID, 1000, NO_ID)


def test_setgroups_needs_cap_setgid(target: Target) -> None:
    user = Proc(target.spawn(uid=1000, gid=1000, groups=(5,)))
    with expect_errno(EPERM):
        user.setgroups([5])
    root = Proc(target.spawn())
    root.drop_cap(CAP_SETGID)
    with expect_errno(EPERM):
        root.setgroups([1])
    capable = Proc(target.spawn(uid=1000, gid=1000, caps=bit(CAP_SETGID)))
    capable.setgroups([9, 4, 6])
    assert getgroups(capable) == [4, 6, 9]


def test_setgroups_limits(proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.call("setgroups", 65537, proc.alloc(4))  # NGROUPS_MAX + 1
    with expect_errno(EFAULT):
        proc.call("setgroups", 2, proc.target.bad_addr)
    proc.call("setgroups", 0, 0)
    assert getgroups(proc) == []


# -- capget / capset -------------------------------------------------------------------------------------------

def _hdr(p: Proc, version: int, pid: int = 0) -> int:
    return p.buf(struct.pack("<Ii", version, pid))


def test_capget_version_probe(proc: Proc) -> None:
    # libcap's probe: an unknown version with NULL data succeeds and reports the preferred version.
    hdr = _hdr(proc, 0)
    assert proc.sys("capget", hdr, 0) == 0
    assert struct.unpack("<I", proc.read(hdr, 4))[0] == LINUX_CAPABILITY_VERSION_3
    # With a data pointer the unknown version is EINVAL (and still reported).
    hdr = _hdr(proc, 0x12345678)
    with expect_errno(EINVAL):
        proc.call("capget", hdr, proc.alloc(24))
    assert struct.unpack("<I", proc.read(hdr, 4))[0] == LINUX_CAPABILITY_VERSION_3
    # A known version with NULL data is a successful no-op.
    assert proc.sys("capget", _hdr(proc, LINUX_CAPABILITY_VERSION_3), 0) == 0
    with expect_errno(EFAULT):
        proc.call("capget", proc.target.bad_addr, 0)


def test_capget_v1_copies_one_struct(proc: Proc) -> None:
    data = proc.buf(b"\xaa" * 24)
    proc.call("capget", _hdr(proc, LINUX_CAPABILITY_VERSION_1), data)
    eff, perm, inh = CAP_DATA.unpack(proc.read(data, 12))
    e, p, _ = proc.capget()
    assert (eff, perm, inh) == (e & 0xFFFFFFFF, p & 0xFFFFFFFF, 0)
    assert proc.read(data + 12, 12) == b"\xaa" * 12


def test_capget_of_other_thread_and_bad_pids(proc: Proc) -> None:
    th = proc.thread()
    th.drop_cap(CAP_KILL)
    data = proc.alloc(24)
    proc.call("capget", _hdr(proc, LINUX_CAPABILITY_VERSION_3, th.tid), data)
    assert not CAP_DATA.unpack(proc.read(data, 12))[0] & bit(CAP_KILL)
    with expect_errno(ESRCH):
        proc.call("capget", _hdr(proc, LINUX_CAPABILITY_VERSION_3, NO_SUCH_PID), data)
    with expect_errno(EINVAL):
        proc.call("capget", _hdr(proc, LINUX_CAPABILITY_VERSION_3, -1), data)


def test_capset_rules(target: Target) -> None:
    both = bit(CAP_IPC_OWNER) | bit(CAP_KILL)
    p = Proc(target.spawn(uid=1000, gid=1000, caps=both))
    with expect_errno(EPERM):
        p.capset(both, both | bit(CAP_SETUID))  # raising permitted
    with expect_errno(EPERM):
        p.capset(both, bit(CAP_KILL))  # effective not within permitted
    p.capset(bit(CAP_KILL), both)  # lowering effective only
    assert p.capget() == (bit(CAP_KILL), both, 0)
    p.capset(both, both)  # effective may come back from permitted
    p.capset(bit(CAP_KILL), bit(CAP_KILL))  # dropping from permitted...
    with expect_errno(EPERM):
        p.capset(both, both)  # ...is for good
    assert p.capget() == (bit(CAP_KILL), bit(CAP_KILL), 0)


def test_capset_header_checks(proc: Proc) -> None:
    e, perm, _ = proc.capget()
    data = proc.buf(CAP_DATA.pack(e & 0xFFFFFFFF, perm & 0xFFFFFFFF, 0) + CAP_DATA.pack(e >> 32, perm >> 32, 0))
    hdr = _hdr(proc, 0)
    with expect_errno(EINVAL):
        proc.call("capset", hdr, data)
    assert struct.unpack("<I", proc.read(hdr, 4))[0] == LINUX_CAPABILITY_VERSION_3
    th = proc.thread()
    with expect_errno(EPERM):
        proc.call("capset", _hdr(proc, LINUX_CAPABILITY_VERSION_3, th.tid), data)  # only the caller
    proc.call("capset", _hdr(proc, LINUX_CAPABILITY_VERSION_3, proc.tid), data)  # its own tid is fine
    with expect_errno(EFAULT):
        proc.call("capset", _hdr(proc, LINUX_CAPABILITY_VERSION_3), proc.target.bad_addr)


def test_dropping_ipc_owner_affects_only_the_calling_thread(proc: Proc) -> None:
    th = proc.thread()
    eff, perm, _ = proc.capget()
    proc.drop_cap(CAP_IPC_OWNER)
    assert proc.capget() == (eff & ~bit(CAP_IPC_OWNER), perm, 0)
    assert th.capget() == (eff, perm, 0)
    # Effective can be raised again from permitted.
    proc.capset(eff, perm)
    assert proc.capget() == (eff, perm, 0)


@pytest.mark.parametrize("cap", [CAP_SETUID, CAP_SYS_ADMIN])
def test_dropped_effective_cap_is_not_used(proc: Proc, cap: int) -> None:
    proc.drop_cap(cap)
    if cap == CAP_SETUID:
        with expect_errno(EPERM):
            proc.setresuid(5, 5, 5)
    else:
        from mqsentry.abi.linux.sched import CLONE_NEWIPC

        with expect_errno(EPERM):
            proc.unshare(CLONE_NEWIPC)
