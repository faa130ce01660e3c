"""Path-based operations: open, mkdir, unlink, rmdir, stat, statfs, mount and umount.

Linux counterpart: fs/open.c (``do_sys_openat2``, ``build_open_flags``), fs/namei.c (``path_openat``,
``open_last_lookups``, ``lookup_open``, ``do_open``, ``may_open``, ``do_mkdirat``, ``do_rmdir``,
``do_unlinkat``, ``filename_create``), fs/statfs.c and fs/namespace.c (``path_mount``,
``do_new_mount``, ``do_loopback``, ``path_umount``, ``do_umount``). gVisor counterpart:
pkg/sentry/vfs/vfs.go (``OpenAt``, ``MkdirAt``, ``RmdirAt``, ``UnlinkAt``, ``StatAt``,
``MountAt``, ``UmountAt``) and pkg/sentry/syscalls/linux/vfs2/{open,mount,stat}.go.

Each function follows Linux's order of checks; the syscall layer (syscalls/linux/sys_file.py) only
converts arguments and copies memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqsentry.abi.linux.capability import CAP_FOWNER, CAP_SYS_ADMIN
from mqsentry.abi.linux.errno import (
    EACCES,
    EAGAIN,
    EBUSY,
    EEXIST,
    EINVAL,
    EISDIR,
    ENODEV,
    ENOENT,
    ENOTDIR,
    ENOTEMPTY,
    EOPNOTSUPP,
    EPERM,
    EROFS,
)
from mqsentry.abi.linux.file import (
    MNT_DETACH,
    MNT_EXPIRE,
    MNT_FORCE,
    MS_BIND,
    MS_MGC_MSK,
    MS_MGC_VAL,
    MS_MOVE,
    MS_NOUSER,
    MS_PROPAGATION,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SILENT,
    O_ACCMODE,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_EXCL,
    O_NOATIME,
    O_NOCTTY,
    O_PATH,
    O_TMPFILE_BASE,
    O_TRUNC,
    S_IALLUGO,
    S_IFDIR,
    S_IFMT,
    S_IFREG,
    S_IRWXUGO,
    S_ISVTX,
    UMOUNT_NOFOLLOW,
    o_flags,
)
from mqsentry.fs.vfs.context import fs_context, mount_ns
from mqsentry.fs.vfs.file import FileDescription
from mqsentry.fs.vfs.inode import MAY_EXEC, MAY_READ, MAY_WRITE, Filesystem, Inode, Stat, StatFS, may_create
from mqsentry.fs.vfs.mount import Mount, Path
from mqsentry.fs.vfs.namei import LAST_DOT, LAST_DOTDOT, LAST_NORM, LAST_ROOT, lookup_child, resolve, resolve_parent
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.fs.vfs.context import VFSTask

#: ACC_MODE(flags): MAY_READ / MAY_WRITE by access mode (3 asks for both).
_ACC_MODE = (MAY_READ, MAY_WRITE, MAY_READ | MAY_WRITE, MAY_READ | MAY_WRITE)
#: Flags do_dentry_open drops from f_flags (O_CLOEXEC lives in the fd table instead).
_OPEN_ONLY_FLAGS = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC
#: ST_* bits of statfs f_flags (include/linux/statfs.h).
ST_RDONLY = 0x0001
ST_VALID = 0x0020
ST_RELATIME = 0x1000


def _want_write(p: Path) -> None:
    """``mnt_want_write``: EROFS on a read-only mount."""
    if p.mount.flags & MS_RDONLY:
        raise SysError(EROFS)


def _owner_or_capable(t: VFSTask, inode: Inode) -> bool:
    # inode_owner_or_capable: CAP_FOWNER counts as capable_wrt_inode_uidgid does.
    return t.creds.fsuid == inode.uid or t.creds.has_cap_wrt_ids(CAP_FOWNER, inode.uid, inode.gid)


# -- open -----------------------------------------------------------------------------------------------------
def build_open_flags(t: VFSTask, flags: int, mode: int) -> tuple[int, int, int]:
    """``build_open_how`` + ``build_open_flags``: (flags, create mode, acc_mode) or EINVAL."""
    of = o_flags(t.kernel.arch)
    flags &= of.VALID_OPEN_FLAGS
    mode = (mode & S_IALLUGO) if flags & (O_CREAT | O_TMPFILE_BASE) else 0
    if flags & O_CREAT and flags & of.O_DIRECTORY:
        raise SysError(EINVAL)  # since Linux 6.4
    if flags & O_TMPFILE_BASE:
        if flags & (of.O_TMPFILE | O_CREAT) != of.O_TMPFILE:
            raise SysError(EINVAL)
        if not _ACC_MODE[flags & O_ACCMODE] & MAY_WRITE:
            raise SysError(EINVAL)
    if flags & O_PATH:
        flags &= of.O_DIRECTORY | of.O_NOFOLLOW | O_PATH | O_CLOEXEC
        acc = 0
    else:
        acc = _ACC_MODE[flags & O_ACCMODE]
        if flags & O_TRUNC:
            acc |= MAY_WRITE
        if flags & O_APPEND:
            acc |= MAY_WRITE
    # force_o_largefile(): always on 64-bit.
    flags |= of.O_LARGEFILE
    return flags, mode, acc


def may_open(t: VFSTask, inode: Inode, acc: int, flags: int) -> None:
    """``may_open``: type rules, then permission, then O_NOATIME ownership."""
    if inode.mode & S_IFMT == S_IFDIR:
        if acc & MAY_WRITE:
            raise SysError(EISDIR)
        if acc & MAY_EXEC:
            raise SysError(EACCES)
    if acc:
        inode.check_permission(t.creds, acc)
    if flags & O_NOATIME and not _owner_or_capable(t, inode):
        raise SysError(EPERM)


def open_at(t: VFSTask, dirfd: int, path: str, flags: int, mode: int, acc: int) -> FileDescription:
    """``path_openat`` for already-built flags: the new description (with the creator's reference)."""
    of = o_flags(t.kernel.arch)
    if flags & O_TMPFILE_BASE:
        raise SysError(EOPNOTSUPP)
    if flags & O_PATH:
        p = resolve(t, dirfd, path)
        if flags & of.O_DIRECTORY and not p.inode.is_dir():
            raise SysError(ENOTDIR)
        return _finish(PathFD(flags, p.inode), p)
    if not flags & O_CREAT:
        p = resolve(t, dirfd, path)
        if flags & of.O_DIRECTORY and not p.inode.is_dir():
            raise SysError(ENOTDIR)
        if acc & MAY_WRITE and not p.inode.is_dir():
            _want_write(p)
        may_open(t, p.inode, acc, flags)
        return _open_existing(t, p, flags)
    parent, name, kind, slash = resolve_parent(t, dirfd, path)
    if kind != LAST_NORM:
        # "/", "." or "..": an existing directory.
        raise SysError(EISDIR)
    if slash:
        raise SysError(EISDIR)
    try:
        p = lookup_child(t, parent, name)
    except SysError as e:
        if e.errno != ENOENT:
            raise
        # lookup_open: umask, then may_o_create (EROFS, EACCES), then ->create.
        mode &= ~fs_context(t).umask
        _want_write(parent)
        may_create(t, parent.inode)
        desc = parent.inode.create(t, name, mode & S_IALLUGO, flags & ~_OPEN_ONLY_FLAGS)
        child = Path(parent.mount, desc.inode, parent, name) if desc.inode is not None else parent
        return _finish(desc, child)
    if flags & O_EXCL:
        raise SysError(EEXIST)
    if p.inode.is_dir():
        raise SysError(EISDIR)
    if acc & MAY_WRITE:
        _want_write(p)
    may_open(t, p.inode, acc, flags)
    return _open_existing(t, p, flags)


def _open_existing(t: VFSTask, p: Path, flags: int) -> FileDescription:
    inode = p.inode
    desc = inode.open(t, flags & ~_OPEN_ONLY_FLAGS)
    if flags & O_TRUNC and inode.mode & S_IFMT == S_IFREG:
        trunc = getattr(inode, "truncate", None)
        if trunc is not None:
            trunc(t, 0)
    return _finish(desc, p)


def _finish(desc: FileDescription, p: Path) -> FileDescription:
    desc.path = p
    p.mount.get()
    return desc


class PathFD(FileDescription):
    """An O_PATH descriptor: a location only; I/O gives EBADF (checked by the syscall layer)."""

    pollable = False
    is_path = True


# -- mkdir / unlink / rmdir --------------------------------------------------------------------------------------
def mkdir_at(t: VFSTask, dirfd: int, path: str, mode: int) -> Inode:
    """``do_mkdirat``: EEXIST for an existing name comes before the permission check."""
    parent, name, kind, _ = resolve_parent(t, dirfd, path)
    if kind != LAST_NORM:
        raise SysError(EEXIST)
    _want_write(parent)
    try:
        lookup_child(t, parent, name)
    except SysError as e:
        if e.errno != ENOENT:
            raise
    else:
        raise SysError(EEXIST)
    mode = mode & (S_IRWXUGO | S_ISVTX) & ~fs_context(t).umask
    may_create(t, parent.inode)
    return parent.inode.mkdir(t, name, mode)


def rmdir_at(t: VFSTask, dirfd: int, path: str) -> None:
    """``do_rmdir``."""
    parent, name, kind, _ = resolve_parent(t, dirfd, path)
    if kind == LAST_DOTDOT:
        raise SysError(ENOTEMPTY)
    if kind == LAST_DOT:
        raise SysError(EINVAL)
    if kind == LAST_ROOT:
        raise SysError(EBUSY)
    _want_write(parent)
    child = parent.inode.lookup(t, name)
    if mount_ns(t).top_at(parent.mount, child) is not None:
        raise SysError(EBUSY)
    parent.inode.rmdir(t, name)


def unlink_at(t: VFSTask, dirfd: int, path: str) -> None:
    """``do_unlinkat``."""
    parent, name, kind, slash = resolve_parent(t, dirfd, path)
    if kind != LAST_NORM:
        raise SysError(EISDIR)
    _want_write(parent)
    child = parent.inode.lookup(t, name)
    if slash:
        raise SysError(EISDIR if child.is_dir() else ENOTDIR)
    if mount_ns(t).top_at(parent.mount, child) is not None:
        raise SysError(EBUSY)
    parent.inode.unlink(t, name)


# -- stat ------------------------------------------------------------------------------------------------------------
def stat_at(t: VFSTask, dirfd: int, path: str) -> Stat:
    return resolve(t, dirfd, path).inode.stat()


def statfs_flags(m: Mount | None) -> int:
    """``calculate_f_flags``: ST_VALID plus the mount's flags (mounts default to relatime)."""
    if m is None:
        return ST_VALID
    out = ST_VALID | ST_RELATIME
    if m.flags & MS_RDONLY:
        out |= ST_RDONLY
    return out


def statfs_path(t: VFSTask, p: Path) -> StatFS:
    st = p.inode.fs.statfs(t)
    st.flags = statfs_flags(p.mount)
    return st


# -- mount / umount -------------------------------------------------------------------------------------------------
def may_mount(t: VFSTask) -> None:
    if not t.creds.has_cap(CAP_SYS_ADMIN):
        raise SysError(EPERM)


def do_mount(t: VFSTask, source: str | None, target: str, fstype: str | None, flags: int, data: bytes) -> None:
    """``do_mount`` -> ``path_mount`` after the strings were copied in."""
    p = resolve(t, -100, target)
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
    if flags & MS_NOUSER:
        raise SysError(EINVAL)
    may_mount(t)
    ns = mount_ns(t)
    if flags & MS_REMOUNT:
        if not p.is_mount_root() or not ns.contains(p.mount):
            raise SysError(EINVAL)
        p.mount.flags = (p.mount.flags & ~MS_RDONLY) | (flags & MS_RDONLY)
        return
    if flags & MS_BIND:
        if not source:
            raise SysError(EINVAL)
        src = resolve(t, -100, source)
        if not ns.contains(src.mount):
            raise SysError(EINVAL)
        _graft(t, p, src.mount.fs, src.inode, flags & MS_RDONLY)
        return
    if flags & MS_PROPAGATION:
        # Propagation types are not modelled: every mount is private. Valid on a mount root only.
        if not p.is_mount_root():
            raise SysError(EINVAL)
        bits = flags & MS_PROPAGATION
        if bits & (bits - 1) or flags & ~(MS_PROPAGATION | MS_REC | MS_SILENT):
            raise SysError(EINVAL)
        return
    if flags & MS_MOVE:
        raise SysError(EINVAL)
    # do_new_mount
    if fstype is None or fstype == "":
        raise SysError(EINVAL)
    factory = t.vfs.filesystem_types.get(fstype)
    if factory is None:
        raise SysError(ENODEV)
    fs = factory(t, source or "", flags, data)
    _graft(t, p, fs, fs.root, flags & MS_RDONLY)


def _graft(t: VFSTask, p: Path, fs: Filesystem, root: Inode, mnt_flags: int) -> None:
    """``do_add_mount`` + ``graft_tree``."""
    ns = mount_ns(t)
    if not ns.contains(p.mount):
        raise SysError(EINVAL)
    # Refuse the same filesystem on the same mount point (do_add_mount).
    if p.mount.fs is fs and p.is_mount_root():
        raise SysError(EBUSY)
    if p.inode.is_dir() != root.is_dir():
        raise SysError(ENOTDIR)
    m = Mount(fs, root, p.mount, p, mnt_flags)
    ns.attach(m)


def do_umount(t: VFSTask, target: str, flags: int) -> None:
    """``ksys_umount`` after the flags check: the lookup, then ``path_umount`` (``can_umount``:
    EPERM, then EINVAL for a non-mount-point)."""
    p = resolve(t, -100, target)
    may_mount(t)
    ns = mount_ns(t)
    m = p.mount
    if not p.is_mount_root() or not ns.contains(m):
        raise SysError(EINVAL)
    if m is ns.root:
        raise SysError(EINVAL if flags & MNT_DETACH else EBUSY)
    if flags & MNT_FORCE and not t.creds.has_cap(CAP_SYS_ADMIN):
        raise SysError(EPERM)
    if flags & MNT_EXPIRE:
        if flags & (MNT_FORCE | MNT_DETACH):
            raise SysError(EINVAL)
        if not m.expiry_mark:
            m.expiry_mark = True
            raise SysError(EAGAIN)
    cwd = fs_context(t).cwd
    busy = m.busy() or ns.has_children(m) or cwd.mount is m
    if busy and not flags & MNT_DETACH:
        raise SysError(EBUSY)
    ns.detach(m)


UMOUNT_FLAGS = MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW

__all__ = ["build_open_flags", "open_at", "may_open", "mkdir_at", "rmdir_at", "unlink_at", "stat_at",
           "statfs_path", "statfs_flags", "do_mount", "do_umount", "UMOUNT_FLAGS", "PathFD"]
