"""Per-task filesystem context: fd table, fs_struct (umask, root, cwd) and mount namespace.

Linux counterpart: ``struct files_struct`` (CLONE_FILES), ``struct fs_struct`` (CLONE_FS: umask,
root, pwd; fs/fs_struct.c) and ``nsproxy->mnt_ns`` (CLONE_NEWNS; kernel/nsproxy.c,
fs/namespace.c ``copy_mnt_ns``), set up at fork by kernel/fork.c ``copy_files``/``copy_fs``/
``copy_namespaces`` and torn down at exit by ``exit_files``. gVisor counterpart:
pkg/sentry/kernel/task_clone.go, fs_context.go (``FSContext``) and fd_table.go.

Where the state lives (all in ``Task.ext``, so package ``kernel`` needs no VFS fields):

- ``t.ext["vfs.files"]``: the :class:`~fs.vfs.fdtable.FDTable`, one per process (threads share it);
- ``t.ext["vfs.fs"]``: the :class:`FSContext` (umask, root, cwd), one per process (threads share it);
- ``t.ext["vfs.mntns"]``: the task's :class:`~fs.vfs.mount.MountNamespace` (per task, like nsproxy).

Per-kernel state (the initial mount namespace and anonymous device numbers) is a :class:`KernelVFS`
at ``kernel.vfs``, created with the kernel's first task.

Lock order of package ``fs.vfs``: ``FSContext.mu`` and ``FDTable.mu`` are leaves taken alone (or
``FDTable.mu`` -> ``FileDescription.mu`` for incref); ``MountNamespace.mu`` -> ``Mount._mu``;
``Inode.mu`` (directory, then child). Filesystem operations (which may take IPC locks, e.g. mqfs ->
``mqfs.MqueueFilesystem.mu``) run with no fs.vfs lock held except the filesystem's own inode locks.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from mqsentry.abi.linux.sched import CLONE_NEWNS
from mqsentry.fs.vfs.fdtable import FDTable
from mqsentry.fs.vfs.mount import Mount, MountNamespace, Path, remap_path
from mqsentry.fs.vfs.tmpfs import new_root_fs
from mqsentry.kernel.kernel import Kernel

if TYPE_CHECKING:
    from mqsentry.kernel.task import Task, ThreadGroup


class KernelVFS:
    """The VFS state of one kernel. ``_mu`` guards ``_next_minor``; ``init_mntns`` is immutable."""

    def __init__(self, kernel: Kernel) -> None:
        self._mu = threading.Lock()
        self._next_minor = itertools.count(0x40)
        root_fs = new_root_fs(self.alloc_anon_dev(), kernel.clock.now_ns())
        self.init_mntns = MountNamespace(Mount(root_fs, root_fs.root, None, None))

    def alloc_anon_dev(self) -> int:
        """``get_anon_bdev``: a fresh anonymous device number (major 0)."""
        with self._mu:
            minor = next(self._next_minor)
        return ((minor & 0xFFF00) << 12) | (minor & 0xFF)


def kernel_vfs(k: Kernel) -> KernelVFS:
    v = getattr(k, "vfs", None)
    if v is None:
        with k.tasks_mu:
            v = getattr(k, "vfs", None)
            if v is None:
                v = KernelVFS(k)
                k.vfs = v  # type: ignore[attr-defined]
    return v


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

    def copy(self) -> "FSContext":
        with self.mu:
            return FSContext(self.umask, self.root, self.cwd)


def fs_context(t: "Task") -> FSContext:
    return t.ext["vfs.fs"]


def mount_ns(t: "Task") -> MountNamespace:
    return t.ext["vfs.mntns"]


def current_umask(t: "Task") -> int:
    """The calling process's umask (``current_umask()``); mq_open applies ``mode & ~umask``."""
    return t.ext["vfs.fs"].umask


# -- lifecycle hooks -------------------------------------------------------------------------------------------
def _on_new_process(t: "Task", parent: "Task | None") -> None:
    if parent is None or "vfs.files" not in parent.ext:
        ns = kernel_vfs(t.kernel).init_mntns
        root = ns.root_path()
        t.ext["vfs.files"] = FDTable()
        t.ext["vfs.fs"] = FSContext(0o022, root, root)
        t.ext["vfs.mntns"] = ns
    else:
        t.ext["vfs.files"] = parent.ext["vfs.files"].fork()
        t.ext["vfs.fs"] = parent.ext["vfs.fs"].copy()
        t.ext["vfs.mntns"] = parent.ext["vfs.mntns"]
    t.tg.exit_hooks.append(_close_files_at_exit)


def _on_new_thread(t: "Task", parent: "Task") -> None:
    # CLONE_FILES | CLONE_FS: the same objects; the mount namespace reference is per task.
    for key in ("vfs.files", "vfs.fs", "vfs.mntns"):
        if key in parent.ext:
            t.ext[key] = parent.ext[key]


def _close_files_at_exit(tg: "ThreadGroup") -> None:
    """``exit_files``: the last thread of the process has exited; close every fd (flush + decref)."""
    if not tg.tasks:
        return
    leader = tg.tasks[0]
    table: FDTable | None = leader.ext.get("vfs.files")
    if table is not None:
        table.close_all(leader)


def _unshare_newns(t: "Task") -> None:
    """``unshare(CLONE_NEWNS)``: copy the mount namespace; root and cwd move to the copies.

    CLONE_NEWNS implies CLONE_FS, so the caller also gets a private fs_struct (Linux ``unshare_fs``
    copies it when other threads share it; a private copy is equivalent when nobody does)."""
    ns, mapping = mount_ns(t).clone()
    ctx = fs_context(t).copy()
    ctx.root = remap_path(ctx.root, mapping)
    ctx.cwd = remap_path(ctx.cwd, mapping)
    t.ext["vfs.mntns"] = ns
    t.ext["vfs.fs"] = ctx


def register() -> None:
    """Install the hooks (idempotent; done when fs.vfs is imported)."""
    from mqsentry.syscalls.linux.sys_thread import UNSHARE_HANDLERS

    if _on_new_process not in Kernel.task_hooks:
        Kernel.task_hooks.append(_on_new_process)
    if _on_new_thread not in Kernel.thread_hooks:
        Kernel.thread_hooks.append(_on_new_thread)
    UNSHARE_HANDLERS[CLONE_NEWNS] = _unshare_newns


__all__ = ["KernelVFS", "kernel_vfs", "FSContext", "fs_context", "mount_ns", "current_umask", "register"]
