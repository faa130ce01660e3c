"""The mqueue filesystem of one IPC namespace: the root directory, queue inodes and mq_open's lookup.

Linux counterpart: ipc/mqueue.c — ``mqueue_fill_super``/``mqueue_get_inode`` (root 01777, queue inodes
with i_size FILENT_SIZE, root i_size 2*DIRENT_SIZE + DIRENT_SIZE per queue), ``mqueue_create_attr``
(queues_max, the RLIMIT_MSGQUEUE charge), ``mqueue_unlink``, ``mqueue_evict_inode`` (the release),
``prepare_open``/``do_mq_open`` (lookup, EEXIST/EINVAL/EACCES) and ``mq_unlink``.
gVisor counterpart: pkg/sentry/fsimpl/mqfs (``RegistryImpl``, ``rootInode``, ``queueInode``) and
pkg/sentry/kernel/mq ``Registry.FindOrCreate``/``Remove``, fixed to follow Linux (divergences D9-D11
of docs/gvisor-divergences.md).

The filesystem *is* the namespace's queue registry, as ``ipc_ns->mq_mnt`` is in Linux: it implements
:class:`mqsentry.kernel.mq.Registry`, so mq_open and mq_unlink go through
:meth:`MqueueFilesystem.open_queue` / :meth:`MqueueFilesystem.unlink_queue`, and paths under any mount
of the filesystem reach the same inodes. What it needs of the kernel (the RLIMIT_MSGQUEUE table,
whether its namespace is alive, reaping dead namespaces) is the :class:`MqueueHost` interface.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from mqsentry.abi.linux.capability import CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EACCES, EEXIST, EINVAL, EMFILE, ENAMETOOLONG, ENOENT, ENOSPC
from mqsentry.abi.linux.file import (
    O_ACCMODE,
    O_CREAT,
    O_EXCL,
    O_NOCTTY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    S_IFDIR,
    S_IFREG,
    S_ISVTX,
)
from mqsentry.abi.linux.limits import RLIMIT_MSGQUEUE
from mqsentry.abi.linux.mqueue import MQUEUE_MAGIC, NAME_MAX
from mqsentry.fs.vfs.inode import MAY_READ, MAY_WRITE, Filesystem, Inode, StatFS, may_create, may_delete
from mqsentry.kernel.context import KernelContext
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.ipc_sysctl import IPCSysctls
from mqsentry.kernel.mq.limits import UserBytes, default_attr, validate_attr
from mqsentry.kernel.mq.queue import Queue

if TYPE_CHECKING:
    from mqsentry.fs.mqfs.file import QueueFD
    from mqsentry.fs.vfs.file import FileDescription
    from mqsentry.kernel.context import TaskContext

#: ``FILENT_SIZE``: st_size of a queue inode.
FILENT_SIZE = 80
#: ``DIRENT_SIZE``: the root directory grows by this per queue (it starts at two of them).
DIRENT_SIZE = 20

#: Status flags open(2)/dentry_open drop from f_flags.
_OPEN_ONLY = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC
#: oflag2acc of prepare_open.
_ACC = (MAY_READ, MAY_WRITE, MAY_READ | MAY_WRITE)


def check_name(name: str) -> None:
    """``lookup_one_len`` + ``simple_lookup`` on the root: EACCES for "", ".", ".." or a '/' (or NUL)
    in the name, ENAMETOOLONG beyond NAME_MAX bytes."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise SysError(EACCES)
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise SysError(ENAMETOOLONG)


def decode_name(raw: bytes) -> str:
    """Queue names are byte strings; surrogateescape keeps every byte sequence distinct."""
    return raw.decode("utf-8", "surrogateescape")


class QueueInode(Inode):
    """A queue's inode (Linux ``struct mqueue_inode_info`` around ``vfs_inode``).

    Immutable: ``queue``, ``cost``, ``charged_uid``. Guarded by the filesystem's ``mu``: ``linked``
    (still has its name) and ``opens`` (live descriptions); when both are gone the queue is freed.
    The base ``mu`` guards the metadata as in :class:`Inode`.
    """

    def __init__(self, fs: MqueueFilesystem, mode: int, uid: int, gid: int, now_ns: int, queue: Queue,
                 cost: int, charged_uid: int) -> None:
        super().__init__(fs, mode, uid, gid, now_ns)
        self.queue = queue
        self.cost = cost
        self.charged_uid = charged_uid
        self.linked = True
        self.opens = 0
        queue.inode = self

    def size(self) -> int:
        return FILENT_SIZE

    def open(self, t: TaskContext, flags: int) -> FileDescription:
        """open(2) of a queue through a mount gives a real queue descriptor, as in Linux."""
        fs: MqueueFilesystem = self.fs  # type: ignore[assignment]
        with fs.mu:
            return fs.new_fd_locked(self, flags)


class RootDir(Inode):
    """The root directory (01777, sticky). ``children`` (name -> QueueInode, oldest first) is
    guarded by the filesystem's ``mu``."""

    def __init__(self, fs: MqueueFilesystem, uid: int, gid: int, now_ns: int) -> None:
        super().__init__(fs, S_IFDIR | S_ISVTX | 0o777, uid, gid, now_ns, nlink=2)
        self.children: dict[str, QueueInode] = {}

    def size(self) -> int:
        return 2 * DIRENT_SIZE + DIRENT_SIZE * len(self.children)

    def lookup(self, t: TaskContext, name: str) -> Inode:
        fs: MqueueFilesystem = self.fs  # type: ignore[assignment]
        with fs.mu:
            ino = self.children.get(name)
        if ino is None:
            if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise SysError(ENAMETOOLONG)
            raise SysError(ENOENT)
        return ino

    def create(self, t: TaskContext, name: str, mode: int, flags: int) -> FileDescription:
        """open(O_CREAT) in a mount: a queue with the namespace's default attributes."""
        fs: MqueueFilesystem = self.fs  # type: ignore[assignment]
        try:
            return self._create(t, name, mode, flags)
        except SysError as e:
            if e.errno != EMFILE or not fs.kernel.reap_dead_mqueue_namespaces():
                raise
        return self._create(t, name, mode, flags)

    def _create(self, t: TaskContext, name: str, mode: int, flags: int) -> FileDescription:
        fs: MqueueFilesystem = self.fs  # type: ignore[assignment]
        with fs.mu:
            ino = self.children.get(name)
            if ino is None:
                ino = fs.create_locked(t, name, mode & 0o7777, None)
            elif flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL:
                raise SysError(EEXIST)
            else:
                # The name appeared after the caller's lookup (an mq_open elsewhere, which does not
                # take the directory lock a VFS create holds): open it as an existing file, with
                # may_open's check (ACC_MODE: access mode 3 asks for read and write).
                ino.check_permission(t.creds, _ACC[flags & O_ACCMODE] if flags & O_ACCMODE != O_ACCMODE
                                     else MAY_READ | MAY_WRITE)
            return fs.new_fd_locked(ino, flags)

    def unlink(self, t: TaskContext, name: str) -> None:
        fs: MqueueFilesystem = self.fs  # type: ignore[assignment]
        fs.unlink_queue(t, name)

    def readdir(self) -> list[tuple[str, Inode]]:
        fs: MqueueFilesystem = self.fs  # type: ignore[assignment]
        with fs.mu:
            # dcache_readdir lists the newest dentry first.
            return list(reversed(self.children.items()))

    def open(self, t: TaskContext, flags: int) -> FileDescription:
        from mqsentry.fs.mqfs.file import RootDirFD

        return RootDirFD(flags, self)


class MqueueHost(KernelContext, Protocol):
    """What an mqueue filesystem needs of the kernel that owns its namespace."""

    @property
    def mq_user_bytes(self) -> UserBytes:
        """The RLIMIT_MSGQUEUE charges of every user (one user namespace: one table per kernel)."""
        ...

    def ipc_ns_alive(self, ns: IPCSysctls) -> bool:
        """Whether ``ns`` still exists (Linux clears ``s_fs_info`` when it is freed)."""
        ...

    def reap_dead_mqueue_namespaces(self) -> bool:
        """Drop the names of every dead namespace no mount shows; True if any were dropped."""
        ...


class MqueueFilesystem(Filesystem):
    """One IPC namespace's mqueue filesystem (Linux: the superblock behind ``ipc_ns->mq_mnt``).

    Immutable: ``ns``, ``kernel``, ``root``. ``mu`` (the registry lock; Linux's root inode lock plus
    ``mq_lock``) guards ``queues_count``, ``host_mounts``, the root's ``children`` and every queue inode's ``linked``
    and ``opens``. Lock order: ``mu`` -> ``UserBytes.mu``; ``mu`` -> ``Queue.mu``.
    """

    fs_type = "mqueue"
    magic = MQUEUE_MAGIC

    def __init__(self, ns: IPCSysctls, kernel: MqueueHost, creator_uid: int, dev: int) -> None:
        super().__init__(dev)
        self.ns = ns
        self.kernel = kernel
        self.mu = threading.Lock()
        self.queues_count = 0
        #: Mounts of this tree the kernel does not see (see :meth:`host_mounted`).
        self.host_mounts = 0
        # mqueue_fill_super runs as the namespace's creator (current_fsuid at creation).
        self.root: RootDir = RootDir(self, creator_uid, 0, kernel.clock.now_ns())

    def statfs(self, t: TaskContext) -> StatFS:
        # simple_statfs: f_bsize PAGE_SIZE, f_namelen NAME_MAX, everything else zero.
        return StatFS(type=MQUEUE_MAGIC, bsize=4096, blocks=0, bfree=0, bavail=0, files=0, ffree=0,
                      namelen=NAME_MAX, frsize=4096)

    # -- namespace liveness -----------------------------------------------------------------------------
    def ns_alive(self) -> bool:
        """Whether the IPC namespace still exists (Linux clears ``s_fs_info`` when it is freed).
        The sentry frees a namespace when no live task is in it any more."""
        return self.kernel.ipc_ns_alive(self.ns)

    def has_names(self) -> bool:
        return bool(self.root.children)

    def shown_elsewhere(self) -> bool:
        return self.host_mounts > 0

    def host_mounted(self, delta: int) -> None:
        """A mount outside the kernel's mount namespaces (a platform's FUSE mount in the program's
        host mount namespace) came (+1) or went (-1). The superblock of a user mount keeps the names
        of a dead namespace visible on Linux (``put_ipc_ns`` only unmounts ``ipc_ns->mq_mnt``), so
        when the last such mount goes the dead namespace's names are dropped."""
        with self.mu:
            self.host_mounts += delta
            last = self.host_mounts == 0
        if last and delta < 0:
            self.kernel.reap_dead_mqueue_namespaces()

    # -- creation (caller holds mu) ---------------------------------------------------------------------
    def create_locked(self, t: TaskContext, name: str, mode: int, attr: tuple[int, int] | None) -> QueueInode:
        """``vfs_mkobj`` + ``mqueue_create_attr`` + ``mqueue_get_inode``: ``mode`` is the permission
        part with the umask already applied; ``attr`` (maxmsg, msgsize) or None for the defaults."""
        root = self.root
        may_create(t, root)
        if not self.ns_alive():
            raise SysError(EACCES)
        creds = t.creds
        ns = self.ns
        # mq_queues_max is an unsigned int written through proc_dointvec: a negative sysctl value
        # means "no limit" (UINT_MAX and below), as in C's unsigned comparison.
        if self.queues_count >= ns.mq_queues_max & 0xFFFF_FFFF and not creds.has_cap(CAP_SYS_RESOURCE):
            raise SysError(ENOSPC)
        maxmsg, msgsize = attr if attr is not None else default_attr(ns)
        cost = validate_attr(ns, creds, maxmsg, msgsize)
        self.kernel.mq_user_bytes.charge(creds.ruid, cost, t.tg.rlimits[RLIMIT_MSGQUEUE][0])
        now = self.kernel.clock.now_ns()
        q = Queue(self.kernel, maxmsg, msgsize)
        ino = QueueInode(self, S_IFREG | (mode & 0o7777), creds.fsuid, creds.fsgid, now, q, cost, creds.ruid)
        self.queues_count += 1
        root.children[name] = ino
        root.mtime_ns = root.ctime_ns = now
        return ino

    def new_fd_locked(self, ino: QueueInode, oflag: int) -> QueueFD:
        """``dentry_open``: a description with the open flags minus the open-only ones."""
        from mqsentry.fs.mqfs.file import QueueFD

        ino.opens += 1
        return QueueFD(oflag & 0xFFFF_FFFF & ~_OPEN_ONLY, ino)  # f_flags is unsigned

    # -- mq_open / mq_unlink ----------------------------------------------------------------------------
    def open_queue(self, t: TaskContext, name: str, oflag: int, mode: int, attr: tuple[int, int] | None,
                   umask: int) -> QueueFD:
        """``do_mq_open`` after the fd is reserved: lookup, then create or check the existing queue."""
        check_name(name)
        try:
            return self._open_queue(t, name, oflag, mode, attr, umask)
        except SysError as e:
            # RLIMIT_MSGQUEUE is per user across namespaces: queues of namespaces that died since
            # (Linux frees them with the superblock) must not count. Reap them and retry once.
            if e.errno != EMFILE or not self.kernel.reap_dead_mqueue_namespaces():
                raise
        return self._open_queue(t, name, oflag, mode, attr, umask)

    def _open_queue(self, t: TaskContext, name: str, oflag: int, mode: int, attr: tuple[int, int] | None,
                    umask: int) -> QueueFD:
        root = self.root
        with self.mu:
            ino = root.children.get(name)
            if ino is None:
                if not oflag & O_CREAT:
                    raise SysError(ENOENT)
                ino = self.create_locked(t, name, mode & ~umask & 0o7777, attr)
            else:
                if oflag & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL:
                    raise SysError(EEXIST)
                acc = oflag & O_ACCMODE
                if acc == O_RDWR | O_WRONLY:
                    raise SysError(EINVAL)
                ino.check_permission(t.creds, _ACC[acc])
            return self.new_fd_locked(ino, oflag)

    def drop_all_names(self) -> None:
        """The namespace died and no mount shows the tree any more (``kill_litter_super``): every
        name goes; queues still open stay until their last close."""
        root = self.root
        doomed = []
        with self.mu:
            for ino in root.children.values():
                ino.linked = False
                with ino.mu:
                    ino.nlink = 0
                if ino.opens == 0:
                    doomed.append(self._free_locked(ino))
            root.children.clear()
        for q in doomed:
            q.destroy()

    def unlink_queue(self, t: TaskContext, name: str) -> None:
        """``mq_unlink`` / unlink(2) in a mount: the sticky-directory rule gives EPERM."""
        check_name(name)
        root = self.root
        doomed = None
        with self.mu:
            ino = root.children.get(name)
            if ino is None:
                raise SysError(ENOENT)
            may_delete(t, root, ino)
            del root.children[name]
            now = self.kernel.clock.now_ns()
            root.mtime_ns = root.ctime_ns = now
            with ino.mu:
                ino.nlink = 0
                ino.ctime_ns = now
            ino.linked = False
            if ino.opens == 0:
                doomed = self._free_locked(ino)
        if doomed is not None:
            doomed.destroy()

    # -- release ---------------------------------------------------------------------------------------
    def fd_released(self, ino: QueueInode) -> None:
        """A description of ``ino`` was released; free the queue if it was the last and unlinked."""
        doomed = None
        with self.mu:
            ino.opens -= 1
            if ino.opens == 0 and not ino.linked:
                doomed = self._free_locked(ino)
        if doomed is not None:
            doomed.destroy()

    def _free_locked(self, ino: QueueInode) -> Queue:
        """``mqueue_evict_inode``: give back the RLIMIT_MSGQUEUE charge and the queue count; the
        caller destroys the returned queue after dropping ``mu``."""
        self.kernel.mq_user_bytes.release(ino.charged_uid, ino.cost)
        self.queues_count -= 1
        return ino.queue


__all__ = ["MqueueHost", "MqueueFilesystem", "RootDir", "QueueInode", "check_name", "decode_name", "FILENT_SIZE",
           "DIRENT_SIZE"]
