"""Identity syscalls: the getuid/setuid families, groups, capget/capset.

Linux counterpart: kernel/sys.c (``__sys_setresuid``, ``__sys_setuid``, ``__sys_setreuid``,
``__sys_setfsuid`` and the gid twins), kernel/groups.c, kernel/capability.c and
security/commoncap.c (``cap_capset``, ``cap_task_fix_setuid``). gVisor counterpart:
pkg/sentry/syscalls/linux/sys_identity.go, sys_capability.go and pkg/sentry/kernel/task_identity.go.

These are raw syscalls: each changes only the calling thread's credentials (glibc's broadcast to all
threads is a libc feature). The sentry models only the initial user namespace, so every uid and
gid except -1 is valid.
"""

from __future__ import annotations

import struct

from mqsentry.abi.linux.capability import (
    ALL_CAPS,
    CAP_DATA,
    CAP_HEADER,
    CAP_SETGID,
    CAP_SETPCAP,
    CAP_SETUID,
    LINUX_CAPABILITY_VERSION_1,
    LINUX_CAPABILITY_VERSION_2,
    LINUX_CAPABILITY_VERSION_3,
)
from mqsentry.abi.linux.errno import EFAULT, EINVAL, EPERM, ESRCH
from mqsentry.kernel.auth.credentials import NGROUPS_MAX, Credentials
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux.args import int32, uint32
from mqsentry.syscalls.linux.table import Syscall

NO_ID = 0xFFFF_FFFF  # (uid_t) -1: "leave unchanged"
_U32 = struct.Struct("<I")


def _commit(t: Task, new: Credentials) -> int:
    t.creds = new
    return 0


# -- getters ------------------------------------------------------------------------------------------

def getuid(t: Task, *_: int) -> int:
    return t.creds.ruid


def geteuid(t: Task, *_: int) -> int:
    return t.creds.euid


def getgid(t: Task, *_: int) -> int:
    return t.creds.rgid


def getegid(t: Task, *_: int) -> int:
    return t.creds.egid


def _put_ids(t: Task, ptrs: tuple[int, int, int], ids: tuple[int, int, int]) -> int:
    for p, v in zip(ptrs, ids):
        t.copy_out(p, _U32.pack(v))
    return 0


def getresuid(t: Task, ruidp: int, euidp: int, suidp: int, *_: int) -> int:
    c = t.creds
    return _put_ids(t, (ruidp, euidp, suidp), (c.ruid, c.euid, c.suid))


def getresgid(t: Task, rgidp: int, egidp: int, sgidp: int, *_: int) -> int:
    c = t.creds
    return _put_ids(t, (rgidp, egidp, sgidp), (c.rgid, c.egid, c.sgid))


def getgroups(t: Task, size: int, list_: int, *_: int) -> int:
    gidsetsize = int32(size)
    if gidsetsize < 0:
        raise SysError(EINVAL)
    groups = t.creds.groups
    if gidsetsize:
        if len(groups) > gidsetsize:
            raise SysError(EINVAL)
        t.copy_out(list_, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


# -- uid setters --------------------------------------------------------------------------------------

def setresuid(t: Task, ruid: int, euid: int, suid: int, *_: int) -> int:
    r, e, s = uint32(ruid), uint32(euid), uint32(suid)
    old = t.creds
    if ((r == NO_ID or r == old.ruid) and (e == NO_ID or (e == old.euid and e == old.fsuid))
            and (s == NO_ID or s == old.suid)):
        return 0
    allowed = (old.ruid, old.euid, old.suid)
    if any(v != NO_ID and v not in allowed for v in (r, e, s)) and not old.has_cap(CAP_SETUID):
        raise SysError(EPERM)
    new = old.with_changes(ruid=old.ruid if r == NO_ID else r, euid=old.euid if e == NO_ID else e,
                           suid=old.suid if s == NO_ID else s)
    new = new.with_changes(fsuid=new.euid)
    return _commit(t, new.fixed_after_setuid(old))


def setuid(t: Task, uid: int, *_: int) -> int:
    u = uint32(uid)
    if u == NO_ID:
        raise SysError(EINVAL)
    old = t.creds
    if old.has_cap(CAP_SETUID):
        new = old.with_changes(ruid=u, suid=u)
    elif u != old.ruid and u != old.suid:
        raise SysError(EPERM)
    else:
        new = old
    new = new.with_changes(euid=u, fsuid=u)
    return _commit(t, new.fixed_after_setuid(old))


def setreuid(t: Task, ruid: int, euid: int, *_: int) -> int:
    r, e = uint32(ruid), uint32(euid)
    old = t.creds
    cap = old.has_cap(CAP_SETUID)
    nr, ne = old.ruid, old.euid
    if r != NO_ID:
        nr = r
        if r != old.ruid and r != old.euid and not cap:
            raise SysError(EPERM)
    if e != NO_ID:
        ne = e
        if e != old.ruid and e != old.euid and e != old.suid and not cap:
            raise SysError(EPERM)
    ns = old.suid
    if r != NO_ID or (e != NO_ID and e != old.ruid):
        ns = ne
    new = old.with_changes(ruid=nr, euid=ne, suid=ns, fsuid=ne)
    return _commit(t, new.fixed_after_setuid(old))


def setfsuid(t: Task, uid: int, *_: int) -> int:
    u = uint32(uid)
    old = t.creds
    if u == NO_ID:
        return old.fsuid
    if u in (old.ruid, old.euid, old.suid, old.fsuid) or old.has_cap(CAP_SETUID):
        if u != old.fsuid:
            t.creds = old.with_changes(fsuid=u).fixed_after_setuid(old, fs_only=True)
    return old.fsuid


# -- gid setters --------------------------------------------------------------------------------------

def setresgid(t: Task, rgid: int, egid: int, sgid: int, *_: int) -> int:
    r, e, s = uint32(rgid), uint32(egid), uint32(sgid)
    old = t.creds
    if ((r == NO_ID or r == old.rgid) and (e == NO_ID or (e == old.egid and e == old.fsgid))
            and (s == NO_ID or s == old.sgid)):
        return 0
    allowed = (old.rgid, old.egid, old.sgid)
    if any(v != NO_ID and v not in allowed for v in (r, e, s)) and not old.has_cap(CAP_SETGID):
        raise SysError(EPERM)
    new = old.with_changes(rgid=old.rgid if r == NO_ID else r, egid=old.egid if e == NO_ID else e,
                           sgid=old.sgid if s == NO_ID else s)
    return _commit(t, new.with_changes(fsgid=new.egid))


def setgid(t: Task, gid: int, *_: int) -> int:
    g = uint32(gid)
    if g == NO_ID:
        raise SysError(EINVAL)
    old = t.creds
    if old.has_cap(CAP_SETGID):
        new = old.with_changes(rgid=g, sgid=g)
    elif g != old.rgid and g != old.sgid:
        raise SysError(EPERM)
    else:
        new = old
    return _commit(t, new.with_changes(egid=g, fsgid=g))


def setregid(t: Task, rgid: int, egid: int, *_: int) -> int:
    r, e = uint32(rgid), uint32(egid)
    old = t.creds
    cap = old.has_cap(CAP_SETGID)
    nr, ne = old.rgid, old.egid
    if r != NO_ID:
        nr = r
        if r != old.rgid and r != old.egid and not cap:
            raise SysError(EPERM)
    if e != NO_ID:
        ne = e
        if e != old.rgid and e != old.egid and e != old.sgid and not cap:
            raise SysError(EPERM)
    ns = old.sgid
    if r != NO_ID or (e != NO_ID and e != old.rgid):
        ns = ne
    return _commit(t, old.with_changes(rgid=nr, egid=ne, sgid=ns, fsgid=ne))


def setfsgid(t: Task, gid: int, *_: int) -> int:
    g = uint32(gid)
    old = t.creds
    if g == NO_ID:
        return old.fsgid
    if g in (old.rgid, old.egid, old.sgid, old.fsgid) or old.has_cap(CAP_SETGID):
        if g != old.fsgid:
            t.creds = old.with_changes(fsgid=g)
    return old.fsgid


def setgroups(t: Task, size: int, list_: int, *_: int) -> int:
    if not t.creds.has_cap(CAP_SETGID):
        raise SysError(EPERM)
    n = uint32(size)
    if n > NGROUPS_MAX:
        raise SysError(EINVAL)
    data = t.copy_in(list_, 4 * n)
    groups = tuple(sorted(struct.unpack(f"<{n}I", data)))
    return _commit(t, t.creds.with_changes(groups=groups))


# -- capabilities ---------------------------------------------------------------------------------------

def _validate_magic(t: Task, hdrp: int) -> int:
    """``cap_validate_magic``: the number of data structs, or EINVAL after writing back v3."""
    if hdrp == 0:
        raise SysError(EFAULT)
    version = _U32.unpack(t.copy_in(hdrp, 4))[0]
    if version == LINUX_CAPABILITY_VERSION_1:
        return 1
    if version in (LINUX_CAPABILITY_VERSION_2, LINUX_CAPABILITY_VERSION_3):
        return 2
    t.copy_out(hdrp, _U32.pack(LINUX_CAPABILITY_VERSION_3))
    raise SysError(EINVAL)


def capget(t: Task, hdrp: int, datap: int, *_: int) -> int:
    try:
        tocopy = _validate_magic(t, hdrp)
    except SysError as e:
        if datap == 0 and e.errno == EINVAL:
            return 0  # a version probe
        raise
    if datap == 0:
        return 0
    pid = CAP_HEADER.unpack(t.copy_in(hdrp, CAP_HEADER.size))[1]
    if pid < 0:
        raise SysError(EINVAL)
    target = t if pid == 0 or pid == t.tid else t.kernel.find_task(pid)
    if target is None:
        raise SysError(ESRCH)
    c = target.creds
    out = b""
    for i in range(tocopy):
        sh = 32 * i
        out += CAP_DATA.pack((c.cap_effective >> sh) & 0xFFFF_FFFF, (c.cap_permitted >> sh) & 0xFFFF_FFFF,
                             (c.cap_inheritable >> sh) & 0xFFFF_FFFF)
    t.copy_out(datap, out)
    return 0


def capset(t: Task, hdrp: int, datap: int, *_: int) -> int:
    tocopy = _validate_magic(t, hdrp)
    pid = CAP_HEADER.unpack(t.copy_in(hdrp, CAP_HEADER.size))[1]
    if pid != 0 and pid != t.tid:
        raise SysError(EPERM)
    raw = t.copy_in(datap, CAP_DATA.size * tocopy)
    eff = perm = inh = 0
    for i in range(tocopy):
        e, p, inh_i = CAP_DATA.unpack_from(raw, CAP_DATA.size * i)
        eff |= e << (32 * i)
        perm |= p << (32 * i)
        inh |= inh_i << (32 * i)
    eff &= ALL_CAPS
    perm &= ALL_CAPS
    inh &= ALL_CAPS
    old = t.creds
    # cap_capset (security/commoncap.c).
    if inh & ~(old.cap_inheritable | old.cap_permitted) and not old.has_cap(CAP_SETPCAP):
        raise SysError(EPERM)
    if inh & ~(old.cap_inheritable | old.cap_bounding):
        raise SysError(EPERM)
    if perm & ~old.cap_permitted:
        raise SysError(EPERM)
    if eff & ~perm:
        raise SysError(EPERM)
    new = old.with_changes(cap_effective=eff, cap_permitted=perm, cap_inheritable=inh,
                           cap_ambient=old.cap_ambient & perm & inh)
    return _commit(t, new)


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("getuid", getuid), Syscall("geteuid", geteuid), Syscall("getgid", getgid),
    Syscall("getegid", getegid), Syscall("getresuid", getresuid), Syscall("getresgid", getresgid),
    Syscall("getgroups", getgroups), Syscall("setresuid", setresuid), Syscall("setuid", setuid),
    Syscall("setreuid", setreuid), Syscall("setfsuid", setfsuid), Syscall("setresgid", setresgid),
    Syscall("setgid", setgid), Syscall("setregid", setregid), Syscall("setfsgid", setfsgid),
    Syscall("setgroups", setgroups), Syscall("capget", capget), Syscall("capset", capset),
)}
