"""The composition root: builds a fully wired sentry kernel.

Linux counterpart: start_kernel (init/main.c) with the initcalls that register filesystem types and
the syscall table being compiled in. gVisor counterpart: runsc/boot (``Loader`` creating the
``mqsentry.kernel.Kernel`` with its syscall table, VFS filesystem types and IPC namespace registries).

Every layer below takes what it needs as constructor arguments or typed interfaces; this module is the
one place that chooses the implementations:

- the syscall table of the architecture (``mqsentry.syscalls.linux.table_for``);
- the filesystem types mount(2) knows (tmpfs, mqueue);
- the POSIX queue registry of each IPC namespace (``mqsentry.fs.mqfs.MqueueFilesystem``, which implements
  ``mqsentry.kernel.mq.Registry``).

``from mqsentry import Kernel`` gives :class:`Kernel` from here.
"""

from __future__ import annotations

from mqsentry.fs.mqfs import MqueueFilesystem, check_mount_options
from mqsentry.fs.vfs.context import FilesystemType, VFSTask
from mqsentry.fs.vfs.inode import Filesystem
from mqsentry.fs.vfs.tmpfs import new_tmpfs
from mqsentry.kernel import kernel as _core
from mqsentry.kernel.ipc_namespace import IPCNamespace
from mqsentry.kernel.ktime import Clock
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux import SyscallTable, table_for


def new_posix_registry(ns: IPCNamespace) -> MqueueFilesystem:
    """``mq_init_ns``: the namespace's mqueue filesystem, created with it and owned by it."""
    k = ns.kernel
    return MqueueFilesystem(ns, k, ns.creator_uid, k.vfs.alloc_anon_dev())


def mount_mqueue(t: VFSTask, source: str, flags: int, data: bytes) -> Filesystem:
    """mount(2) of type "mqueue" (``mqueue_get_tree``): the mounter's IPC namespace's filesystem."""
    check_mount_options(data)
    if not isinstance(t, Task):
        raise TypeError(f"mqueue mount by {t!r}, which is not a sentry task")
    fs = t.ipc_ns.posix_queues
    if not isinstance(fs, Filesystem):
        raise TypeError(f"the POSIX registry {fs!r} of {t!r} is not a filesystem")
    return fs


#: The filesystem types mount(2) knows (Linux's ``file_systems`` list after the initcalls ran).
FILESYSTEM_TYPES: dict[str, FilesystemType] = {
    "tmpfs": new_tmpfs,
    "mqueue": mount_mqueue,
}


class Kernel(_core.Kernel):
    """A kernel wired with the Linux syscall table, tmpfs and mqueue, and the mqueue filesystem as
    each IPC namespace's POSIX queue registry. The embedded API: ``Kernel(arch="amd64", clock=...)``,
    then ``new_task``, ``Task.syscall``, ``fork``, ``clone_thread``, ``sysctl_read``/``sysctl_write``."""

    syscall_table: SyscallTable

    def __init__(self, arch: str = "amd64", clock: Clock | None = None) -> None:
        if arch not in _core.ARCHES:
            raise ValueError(f"unsupported arch {arch!r}; choose one of {_core.ARCHES}")
        super().__init__(arch, clock, syscall_table=table_for(arch), filesystem_types=FILESYSTEM_TYPES,
                         posix_registry=new_posix_registry)


__all__ = ["Kernel", "FILESYSTEM_TYPES", "new_posix_registry", "mount_mqueue"]
