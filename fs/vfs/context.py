"""Per-task filesystem context: fd table, fs_struct (umask, root, cwd) and mount namespace.

Linux counterpart: ``struct files_struct`` (CLONE_FILES), ``struct fs_struct`` (CLONE_FS: umask,
root, pwd; fs/fs_struct.c) and ``nsproxy->mnt_ns`` (CLONE_NEWNS; kernel/nsproxy.c,
fs/namespace.c ``copy_mnt_ns``). gVisor counterpart: pkg/sentry/kernel/fs_context.go
(``FSContext``), fd_table.go and the per-task accessors of task.go (``FDTable``, ``FSContext``,
``MountNamespace``).

Where the state lives: typed fields of the task (:class:`VFSTask` is the interface the VFS needs of
it): ``t.fd_table`` (one per process, shared by its threads), ``t.fs_context`` (one per process,
shared by its threads) and ``t.mnt_ns`` (per task, like nsproxy). The kernel core sets them up at
fork, clone and unshare (kernel/fork.c ``copy_files``/``copy_fs``/``copy_namespaces``) and closes the
table when the process exits (``exit_files``).

Per-kernel state (the initial mount namespace, the filesystem types mount(2) knows, anonymous device
numbers) is a :class:`KernelVFS` at ``t.vfs`` (the kernel's ``vfs`` field).

Lock order of package ``mqsentry.fs.vfs``: ``FSContext.mu`` and ``FDTable.mu`` are leaves taken alone (or
``FDTable.mu`` -> ``FileDescription.mu`` for incref); ``MountNamespace.mu`` -> ``Mount._mu``;
``Inode.mu`` (directory, then child). Filesystem operations (which may take IPC locks, e.g. mqfs ->
``mqfs.MqueueFilesystem.mu``) run with no mqsentry.fs.vfs lock held except the filesystem's own inode locks.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from mqsentry.fs.vfs.fdtable import FDTable
from mqsentry.fs.vfs.inode import Filesystem
from mqsentry.fs.vfs.mount import Mount, MountNamespace, Path, remap_path
from mqsentry.fs.vfs.tmpfs import new_root_fs
from mqsentry.kernel.context import TaskContext


class VFSTask(TaskContext, Protocol):
    """What the VFS needs of the calling task: its files, fs_struct, mount namespace and kernel VFS."""

    fd_table: FDTable
    fs_context: FSContext
    mnt_ns: MountNamespace

    @property
    def vfs(self) -> KernelVFS: ...


#: A filesystem type mount(2) knows: fn(task, source, flags, data) returning the filesystem to mount (a
#: new instance, or a shared one such as the caller IPC namespace's mqueue fs); SysError for bad options.
FilesystemType = Callable[[VFSTask, str, int, bytes], Filesystem]


class KernelVFS:
    """The VFS state of one kernel (gVisor ``vfs.VirtualFilesystem``).

    ``_mu`` guards ``_next_minor``; ``init_mntns`` and ``filesystem_types`` are immutable.
    """

    def __init__(self, now_ns: int, filesystem_types: Mapping[str, FilesystemType]) -> None:
        self._mu = threading.Lock()
        self._next_minor = itertools.count(0x40)
        self.filesystem_types: Mapping[str, FilesystemType] = dict(filesystem_types)
        root_fs = new_root_fs(self.alloc_anon_dev(), now_ns)
        self.init_mntns = MountNamespace(Mount(root_fs, root_fs.root, None, None))

    def alloc_anon_dev(self) -> int:
        """``get_anon_bdev``: a fresh anonymous device number (major 0)."""
        with self._mu:
            minor = next(self._next_minor)
        return ((minor & 0xFFF00) << 12) | (minor & 0xFF)


class FSContext:
    """``struct fs_struct``: shared by the threads of a process, copied at fork.

    ``mu`` guards ``umask``, ``root`` and ``cwd``.
    """

    __slots__ = ("mu", "umask", "root", "cwd")

    def __init__(self, umask: int, root: Path, cwd: Path) -> None:
        self.mu = threading.Lock()
        self.umask = umask
        self.root = root
        self.cwd = cwd

    def copy(self) -> FSContext:
        with self.mu:
            return FSContext(self.umask, self.root, self.cwd)


def fs_context(t: VFSTask) -> FSContext:
    return t.fs_context


def mount_ns(t: VFSTask) -> MountNamespace:
    return t.mnt_ns


def fd_table(t: VFSTask) -> FDTable:
    """The calling process's descriptor table (``current->files``)."""
    return t.fd_table


def current_umask(t: VFSTask) -> int:
    """The calling process's umask (``current_umask()``); mq_open applies ``mode & ~umask``."""
    return t.fs_context.umask


def initial_context(vfs: KernelVFS) -> tuple[FDTable, FSContext, MountNamespace]:
    """The files, fs_struct and mount namespace of a process that has no parent in the sentry."""
    ns = vfs.init_mntns
    root = ns.root_path()
    return FDTable(), FSContext(0o022, root, root), ns


def unshare_newns(t: VFSTask) -> None:
    """``unshare(CLONE_NEWNS)``: copy the mount namespace; root and cwd move to the copies.

    CLONE_NEWNS implies CLONE_FS, so the caller also gets a private fs_struct (Linux ``unshare_fs``
    copies it when other threads share it; a private copy is equivalent when nobody does)."""
    ns, mapping = t.mnt_ns.clone()
    ctx = t.fs_context.copy()
    ctx.root = remap_path(ctx.root, mapping)
    ctx.cwd = remap_path(ctx.cwd, mapping)
    t.mnt_ns = ns
    t.fs_context = ctx


__all__ = ["KernelVFS", "VFSTask", "FilesystemType", "FSContext", "fs_context", "mount_ns", "fd_table",
           "current_umask", "initial_context", "unshare_newns"]
