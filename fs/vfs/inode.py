"""Inodes, filesystems and the generic permission rules.

Linux counterpart: ``struct inode`` / ``struct inode_operations`` / ``struct super_block``
(include/linux/fs.h), fs/namei.c (``generic_permission``, ``may_delete``, ``may_create``),
fs/attr.c (``setattr_prepare``: chmod/chown rules) and fs/stat.c (``generic_fillattr``).
gVisor counterpart: pkg/sentry/vfs/permissions.go (``GenericCheckPermissions``,
``CheckSetStat``, ``CheckDeleteSticky``), pkg/sentry/fsimpl/kernfs/inode_impl_util.go and
pkg/sentry/vfs/filesystem.go.

Inodes are reached from directories by name; the path walk (mqsentry.fs.vfs.mount) never holds an inode lock
while calling into another inode.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqsentry.abi.linux.capability import CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID
from mqsentry.abi.linux.errno import EACCES, ENOENT, ENOTDIR, EPERM
from mqsentry.abi.linux.file import S_IALLUGO, S_IFDIR, S_IFMT, S_ISGID, S_ISUID, S_ISVTX, S_IXUGO
from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.fs.vfs.file import FileDescription
    from mqsentry.kernel.context import TaskContext

MAY_EXEC = 1
MAY_WRITE = 2
MAY_READ = 4


@dataclass(slots=True)
class Stat:
    """What fstat reports (the syscall layer packs it per architecture)."""

    mode: int
    ino: int
    dev: int
    nlink: int
    uid: int
    gid: int
    size: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    blksize: int = 4096
    blocks: int = 0
    rdev: int = 0


@dataclass(slots=True)
class StatFS:
    """What statfs reports."""

    type: int
    bsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    namelen: int
    frsize: int
    flags: int = 0


def generic_permission(creds: Credentials, mode: int, uid: int, gid: int, may: int) -> None:
    """Linux ``generic_permission``: owner/group/other bits, then the DAC capabilities; EACCES."""
    if creds.fsuid == uid:
        bits = mode >> 6
    elif creds.in_group(gid):
        bits = mode >> 3
    else:
        bits = mode
    may &= MAY_READ | MAY_WRITE | MAY_EXEC
    if may & ~bits & 7 == 0:
        return
    # The DAC capabilities count in the caller's user namespace, for an inode whose owner and group
    # are mapped there (capable_wrt_inode_uidgid).
    if mode & S_IFMT == S_IFDIR:
        if not may & MAY_WRITE and creds.has_cap_wrt_ids(CAP_DAC_READ_SEARCH, uid, gid):
            return
        if creds.has_cap_wrt_ids(CAP_DAC_OVERRIDE, uid, gid):
            return
        raise SysError(EACCES)
    # Exec needs at least one x bit even for CAP_DAC_OVERRIDE.
    if (not may & MAY_EXEC or mode & S_IXUGO) and creds.has_cap_wrt_ids(CAP_DAC_OVERRIDE, uid, gid):
        return
    if may == MAY_READ and creds.has_cap_wrt_ids(CAP_DAC_READ_SEARCH, uid, gid):
        return
    raise SysError(EACCES)


class Filesystem:
    """A mounted filesystem instance (Linux ``struct super_block``; gVisor ``vfs.Filesystem``).

    Immutable after construction: ``fs_type``, ``magic``, ``dev``; ``root`` is set once by the
    subclass constructor. ``_ino_mu`` guards ``_next_ino``.
    """

    fs_type: str = ""
    magic: int = 0

    def __init__(self, dev: int) -> None:
        self.dev = dev
        self.root: Inode = None  # type: ignore[assignment]  # set by the subclass
        self._ino_mu = threading.Lock()
        self._next_ino = itertools.count(1)

    def next_ino(self) -> int:
        with self._ino_mu:
            return next(self._next_ino)

    def statfs(self, t: TaskContext) -> StatFS:
        return StatFS(type=self.magic, bsize=4096, blocks=0, bfree=0, bavail=0, files=0, ffree=0,
                      namelen=255, frsize=4096)


class Inode:
    """Base inode (Linux ``struct inode``; gVisor kernfs/vfs inode).

    ``mu`` guards the mutable metadata ``mode`` (permission bits; the type bits never change),
    ``uid``, ``gid``, ``nlink`` and the three times (and subclass state as the subclass documents).
    ``fs`` and ``ino`` are immutable.
    """

    def __init__(self, fs: Filesystem, mode: int, uid: int, gid: int, now_ns: int = 0, nlink: int = 1,
                 ino: int | None = None) -> None:
        self.mu = threading.Lock()
        self.fs = fs
        self.ino = fs.next_ino() if ino is None else ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = nlink
        self.atime_ns = self.mtime_ns = self.ctime_ns = now_ns

    # -- attributes --------------------------------------------------------------------------------------
    def is_dir(self) -> bool:
        return self.mode & S_IFMT == S_IFDIR

    def size(self) -> int:
        """st_size; subclasses override."""
        return 0

    def stat(self) -> Stat:
        with self.mu:
            return Stat(mode=self.mode, ino=self.ino, dev=self.fs.dev, nlink=self.nlink, uid=self.uid,
                        gid=self.gid, size=self.size(), atime_ns=self.atime_ns, mtime_ns=self.mtime_ns,
                        ctime_ns=self.ctime_ns)

    def check_permission(self, creds: Credentials, may: int) -> None:
        """``inode_permission``: SysError(EACCES) unless ``creds`` may access as ``may`` (MAY_*)."""
        with self.mu:
            mode, uid, gid = self.mode, self.uid, self.gid
        generic_permission(creds, mode, uid, gid, may)

    def setattr(self, t: TaskContext, mode: int | None = None, uid: int | None = None, gid: int | None = None) -> None:
        """chmod/chown (``setattr_prepare`` + ``notify_change``): owner or CAP_FOWNER for chmod;
        CAP_CHOWN (or an owner giving the file to one of its groups) for chown; otherwise EPERM."""
        creds = t.creds
        now = t.kernel.clock.now_ns()
        with self.mu:
            if uid is not None and uid == 0xFFFF_FFFF:
                uid = None
            if gid is not None and gid == 0xFFFF_FFFF:
                gid = None
            if uid is not None and not ((creds.fsuid == self.uid and uid == self.uid)
                                        or creds.has_cap(CAP_CHOWN)):
                raise SysError(EPERM)
            if gid is not None and not ((creds.fsuid == self.uid and (gid == self.gid or creds.in_group(gid)))
                                        or creds.has_cap(CAP_CHOWN)):
                raise SysError(EPERM)
            if mode is not None:
                if creds.fsuid != self.uid and not creds.has_cap(CAP_FOWNER):
                    raise SysError(EPERM)
                mode &= S_IALLUGO
                # A caller outside the file's group loses S_ISGID (unless CAP_FSETID).
                group = gid if gid is not None else self.gid
                if not creds.in_group(group) and not creds.has_cap(CAP_FSETID):
                    mode &= ~S_ISGID
                self.mode = (self.mode & S_IFMT) | mode
            if uid is not None or gid is not None:
                # chown of a non-directory clears set-id bits (S_ISGID only if group-executable).
                if not self.is_dir():
                    kill = S_ISUID
                    if self.mode & 0o010:
                        kill |= S_ISGID
                    self.mode &= ~kill
                if uid is not None:
                    self.uid = uid
                if gid is not None:
                    self.gid = gid
            self.ctime_ns = now

    # -- directory operations (non-directories: ENOTDIR) ---------------------------------------------------------
    def lookup(self, t: TaskContext, name: str) -> Inode:
        if not self.is_dir():
            raise SysError(ENOTDIR)
        raise SysError(ENOENT)

    def create(self, t: TaskContext, name: str, mode: int, flags: int) -> FileDescription:
        """open(O_CREAT) of a missing ``name``: create it (``mode`` already has the umask applied) and
        return an open description of it."""
        if not self.is_dir():
            raise SysError(ENOTDIR)
        raise SysError(EPERM)

    def mkdir(self, t: TaskContext, name: str, mode: int) -> Inode:
        if not self.is_dir():
            raise SysError(ENOTDIR)
        raise SysError(EPERM)

    def unlink(self, t: TaskContext, name: str) -> None:
        """Remove the non-directory ``name`` (implementations apply :func:`may_delete`)."""
        if not self.is_dir():
            raise SysError(ENOTDIR)
        raise SysError(EPERM)

    def rmdir(self, t: TaskContext, name: str) -> None:
        if not self.is_dir():
            raise SysError(ENOTDIR)
        raise SysError(EPERM)

    def readdir(self) -> list[tuple[str, Inode]]:
        """The entries (without "." and ".."), in a stable order."""
        if not self.is_dir():
            raise SysError(ENOTDIR)
        return []

    def open(self, t: TaskContext, flags: int) -> FileDescription:
        """Open this existing inode with ``flags`` (permissions already checked by the VFS)."""
        raise SysError(EPERM)


def may_create(t: TaskContext, dir: Inode) -> None:
    """``may_create``: write and search permission on the directory."""
    dir.check_permission(t.creds, MAY_WRITE | MAY_EXEC)


def may_delete(t: TaskContext, dir: Inode, victim: Inode) -> None:
    """``may_delete``: write+search on ``dir`` (EACCES), then the sticky-bit rule (EPERM): in a sticky
    directory only the file's owner, the directory's owner or CAP_FOWNER may remove."""
    creds = t.creds
    dir.check_permission(creds, MAY_WRITE | MAY_EXEC)
    with dir.mu:
        sticky, duid = dir.mode & S_ISVTX, dir.uid
    if sticky and creds.fsuid != victim.uid and creds.fsuid != duid \
            and not creds.has_cap_wrt_ids(CAP_FOWNER, victim.uid, victim.gid):  # check_sticky
        raise SysError(EPERM)


__all__ = ["Stat", "StatFS", "Inode", "Filesystem", "generic_permission", "may_create", "may_delete",
           "MAY_READ", "MAY_WRITE", "MAY_EXEC"]
