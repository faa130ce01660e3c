"""Open file descriptions.

Linux counterpart: ``struct file`` and ``struct file_operations`` (include/linux/fs.h, fs/file_table.c:
``alloc_file``, ``fput``, ``__fput``). gVisor counterpart: pkg/sentry/vfs/file_description.go
(``FileDescription``, ``FileDescriptionImpl``) and file_description_impl_util.go (the default
"not supported" implementations).

A description is shared by every fd that refers to it (dup, fork, SCM_RIGHTS would too). Reference
counting: a new description holds one reference, the creator's. :meth:`FDTable.install
<mqsentry.fs.vfs.fdtable.FDTable.install>` takes a reference of its own, so a creator that only installs the
description drops its reference afterwards (``fd = table.install(t, d, cloexec); d.decref()``), as in
gVisor's ``fd := New...(); defer fd.DecRef(); t.NewFDFrom(0, fd, ...)``. The last ``decref`` calls
:meth:`FileDescription.release`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import EINVAL, ENOTDIR, ENOTTY, ENXIO, ESPIPE
from mqsentry.abi.linux.file import (
    O_ACCMODE,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    SEEK_CUR,
    SEEK_DATA,
    SEEK_END,
    SEEK_HOLE,
    SEEK_SET,
)
from mqsentry.kernel import waiter
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.fs.vfs.inode import Inode, Stat, StatFS
    from mqsentry.kernel.context import TaskContext

#: DEFAULT_POLLMASK (include/linux/poll.h): what a file without a poll method reports.
DEFAULT_POLLMASK = waiter.EVENT_IN | waiter.EVENT_OUT | waiter.EVENT_RDNORM | waiter.EVENT_WRNORM


class FileDescription:
    """An open file description (Linux ``struct file``; gVisor ``vfs.FileDescription``).

    ``mu`` guards ``flags``, ``pos`` and the reference count ``_refs`` (and subclass state as the
    subclass documents). ``inode``, ``mount`` and ``path`` are immutable after construction (``path``
    is the :class:`mqsentry.fs.vfs.mount.Path` the description was opened through, None for descriptions that
    were not opened by path, such as epoll instances or mq_open's descriptors).

    ``pollable`` says whether the file has a poll method (Linux ``file_can_poll``): epoll refuses
    files without one (EPERM) and poll reports DEFAULT_POLLMASK for them.
    """

    pollable: bool = True
    #: True for O_PATH descriptors, which ``fdget`` refuses (EBADF for I/O, epoll; POLLNVAL in poll).
    is_path: bool = False

    def __init__(self, flags: int, inode: Inode | None = None) -> None:
        self.mu = threading.Lock()
        self.flags = flags
        self.inode = inode
        self.pos = 0
        self.path: Path | None = None  # set by the VFS for descriptions opened by path
        self._refs = 1
        self._events: waiter.Queue | None = None

    # -- access mode ---------------------------------------------------------------------------------------
    def readable(self) -> bool:
        """FMODE_READ: the access mode is O_RDONLY or O_RDWR."""
        return self.flags & O_ACCMODE in (O_RDONLY, O_RDWR)

    def writable(self) -> bool:
        """FMODE_WRITE: the access mode is O_WRONLY or O_RDWR."""
        return self.flags & O_ACCMODE in (O_WRONLY, O_RDWR)

    # -- operations (defaults give Linux's errno for a missing file operation) ------------------------------
    def read(self, t: TaskContext, n: int, offset: int | None) -> bytes:
        """Read up to ``n`` bytes at ``offset`` (None: at and advancing ``pos``). No ->read: EINVAL."""
        raise SysError(EINVAL)

    def write(self, t: TaskContext, data: bytes, offset: int | None) -> int:
        """Write ``data`` at ``offset`` (None: at ``pos``, or the end with O_APPEND). No ->write: EINVAL."""
        raise SysError(EINVAL)

    def seek(self, t: TaskContext, offset: int, whence: int) -> int:
        """lseek; a file without llseek (``no_llseek``) gives ESPIPE."""
        raise SysError(ESPIPE)

    def readiness(self, mask: int) -> int:
        """The poll bits (mqsentry.kernel.waiter EVENT_*) of ``mask`` that are ready now."""
        return mask & DEFAULT_POLLMASK

    def event_register(self, e: waiter.Entry) -> None:
        """Register ``e`` to be notified when readiness may have changed."""
        q = self._events
        if q is None:
            q = self._events = waiter.Queue()
        q.register(e)

    def event_unregister(self, e: waiter.Entry) -> None:
        q = self._events
        if q is not None:
            q.unregister(e)

    def flush(self, t: TaskContext) -> None:
        """Called on every close() of an fd that refers to this description, by the closing task."""

    def release(self) -> None:
        """Called once, when the last reference is dropped."""

    def stat(self, t: TaskContext) -> Stat:
        """What fstat reports: the inode's attributes (an anonymous inode for inode-less files)."""
        if self.inode is not None:
            return self.inode.stat()
        from mqsentry.fs.vfs.inode import Stat

        # anon_inode_getfile: one shared inode, mode 0600 with no type bits, owned by root.
        return Stat(mode=0o600, ino=1, dev=anon_inode_dev(), nlink=1, uid=0, gid=0, size=0,
                    atime_ns=0, mtime_ns=0, ctime_ns=0)

    def iterate_dir(self, t: TaskContext) -> list[tuple[str, int, int]]:
        """(name, ino, d_type) of every entry, "." and ".." first; non-directories: ENOTDIR."""
        raise SysError(ENOTDIR)

    def statfs(self, t: TaskContext) -> StatFS:
        if self.inode is not None:
            return self.inode.fs.statfs(t)
        from mqsentry.fs.vfs.inode import StatFS

        # anon_inodefs: ANON_INODE_FS_MAGIC, f_bsize PAGE_SIZE, nothing else.
        return StatFS(type=0x09041934, bsize=4096, blocks=0, bfree=0, bavail=0, files=0, ffree=0,
                      namelen=255, frsize=4096)

    def ioctl(self, t: TaskContext, cmd: int, arg: int) -> int:
        raise SysError(ENOTTY)

    # -- reference counting ------------------------------------------------------------------------------------
    def incref(self) -> None:
        with self.mu:
            self._refs += 1

    def decref(self) -> None:
        with self.mu:
            self._refs -= 1
            last = self._refs == 0
        if last:
            if self.__dict__.get("_epoll_links"):
                from mqsentry.fs.vfs.epoll import notify_released

                notify_released(self)
            self.release()
            path = self.path
            if path is not None:
                path.mount.put()

    @property
    def refs(self) -> int:
        """The current reference count (for diagnostics and tests)."""
        return self._refs


def anon_inode_dev() -> int:
    """st_dev of anon_inodefs (a fixed anonymous device in this model)."""
    return 0x0F


if TYPE_CHECKING:
    from mqsentry.fs.vfs.mount import Path

#: MAX_LFS_FILESIZE on 64-bit: the largest file position.
MAX_LFS_FILESIZE = 0x7FFF_FFFF_FFFF_FFFF


def llseek_position(pos: int, size: int, offset: int, whence: int, maxsize: int = MAX_LFS_FILESIZE) -> int:
    """``generic_file_llseek_size``: the new position of a file at ``pos`` of ``size`` bytes (the
    caller stores it, holding its position lock). SEEK_DATA/SEEK_HOLE treat the file as all data."""
    if whence == SEEK_SET:
        new = offset
    elif whence == SEEK_CUR:
        if offset == 0:
            return pos  # "lseek(fd, 0, SEEK_CUR)" only reads the position
        new = pos + offset
    elif whence == SEEK_END:
        new = size + offset
    elif whence == SEEK_DATA:
        if offset < 0 or offset >= size:
            raise SysError(ENXIO)
        new = offset
    elif whence == SEEK_HOLE:
        if offset < 0 or offset >= size:
            raise SysError(ENXIO)
        new = size
    else:
        raise SysError(EINVAL)
    if new < 0 or new > maxsize:
        raise SysError(EINVAL)
    return new


__all__ = ["FileDescription", "DEFAULT_POLLMASK", "anon_inode_dev"]
