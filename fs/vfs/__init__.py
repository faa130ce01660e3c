"""The generic VFS layer: open file descriptions, inodes, fd tables, mounts and path resolution.

Linux counterpart: fs/ (file.c, file_table.c, namei.c, open.c, namespace.c, stat.c, statfs.c,
select.c, eventpoll.c) and mm/shmem.c for the root tmpfs. gVisor counterpart: pkg/sentry/vfs,
pkg/sentry/kernel/fd_table.go, pkg/sentry/kernel/fs_context.go and pkg/sentry/fsimpl/tmpfs.

The per-task state (fd table, fs context, mount namespace) is typed fields of the task, set up by the
kernel core; the filesystem types mount(2) knows are handed to :class:`KernelVFS` by the composition
root (:mod:`mqsentry.boot`). Importing this package registers nothing.

The interface other filesystems code against: :class:`FileDescription`, :class:`Inode`,
:class:`Filesystem`, :class:`Stat`, :class:`StatFS`, :class:`FDTable`, :func:`fd_table`,
:data:`FilesystemType`, :class:`VFSTask`, :func:`current_umask`.
"""

from mqsentry.fs.vfs.context import (
                                     FilesystemType,
                                     FSContext,
                                     KernelVFS,
                                     VFSTask,
                                     current_umask,
                                     fd_table,
                                     fs_context,
                                     mount_ns,
)
from mqsentry.fs.vfs.fdtable import FDTable
from mqsentry.fs.vfs.file import DEFAULT_POLLMASK, FileDescription
from mqsentry.fs.vfs.inode import (
                                     MAY_EXEC,
                                     MAY_READ,
                                     MAY_WRITE,
                                     Filesystem,
                                     Inode,
                                     Stat,
                                     StatFS,
                                     generic_permission,
                                     may_create,
                                     may_delete,
)
from mqsentry.fs.vfs.mount import Mount, MountNamespace, Path
from mqsentry.fs.vfs.tmpfs import TmpfsFilesystem, new_tmpfs

__all__ = ["FileDescription", "DEFAULT_POLLMASK", "Inode", "Filesystem", "Stat", "StatFS", "FDTable", "fd_table",
           "FilesystemType", "FSContext", "KernelVFS", "VFSTask", "Mount", "MountNamespace", "Path", "current_umask",
           "fs_context", "mount_ns", "generic_permission", "may_create", "may_delete", "MAY_READ", "MAY_WRITE",
           "MAY_EXEC", "TmpfsFilesystem", "new_tmpfs"]
