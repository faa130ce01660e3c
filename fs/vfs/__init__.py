"""The generic VFS layer: open file descriptions, inodes, fd tables, mounts and path resolution.

Linux counterpart: fs/ (file.c, file_table.c, namei.c, open.c, namespace.c, stat.c, statfs.c,
select.c, eventpoll.c) and mm/shmem.c for the root tmpfs. gVisor counterpart: pkg/sentry/vfs,
pkg/sentry/kernel/fd_table.go, pkg/sentry/kernel/fs_context.go and pkg/sentry/fsimpl/tmpfs.

Importing this package registers the per-process state hooks on :class:`kernel.Kernel` (fd table,
fs context, mount namespace; see :mod:`fs.vfs.context`) and the ``unshare(CLONE_NEWNS)`` handler.
``syscalls.linux.sys_file`` imports it, so every kernel has the VFS.

The interface other filesystems code against (see /work/notes/vfs-contract.md):
:class:`FileDescription`, :class:`Inode`, :class:`Filesystem`, :class:`Stat`, :class:`StatFS`,
:class:`FDTable`, :func:`fd_table`, :data:`FILESYSTEM_TYPES`, :func:`current_umask`.
"""

from mqsentry.fs.vfs.context import current_umask, fs_context, kernel_vfs, mount_ns, register
from mqsentry.fs.vfs.fdtable import FDTable, fd_table
from mqsentry.fs.vfs.file import DEFAULT_POLLMASK, FileDescription
from mqsentry.fs.vfs.inode import (MAY_EXEC, MAY_READ, MAY_WRITE, Filesystem, Inode, Stat, StatFS, generic_permission,
                          may_create, may_delete)
from mqsentry.fs.vfs.mount import FILESYSTEM_TYPES, Mount, MountNamespace, Path
from mqsentry.fs.vfs.tmpfs import TmpfsFilesystem, new_tmpfs

register()
FILESYSTEM_TYPES.setdefault("tmpfs", new_tmpfs)

__all__ = ["FileDescription", "DEFAULT_POLLMASK", "Inode", "Filesystem", "Stat", "StatFS", "FDTable", "fd_table",
           "FILESYSTEM_TYPES", "Mount", "MountNamespace", "Path", "current_umask", "fs_context", "mount_ns",
           "kernel_vfs", "generic_permission", "may_create", "may_delete", "MAY_READ", "MAY_WRITE", "MAY_EXEC",
           "TmpfsFilesystem"]
