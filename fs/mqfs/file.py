"""Open descriptions of the mqueue filesystem: queue descriptors and the root directory.

Linux counterpart: ipc/mqueue.c ``mqueue_file_operations`` (``mqueue_read_file``, ``mqueue_flush_file``,
``mqueue_poll_file``, ``default_llseek``) and ``simple_dir_operations`` for the root.
gVisor counterpart: pkg/sentry/fsimpl/mqfs/queue.go (``queueFD``) and kernfs's GenericDirectoryFD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.fs.vfs.file import FileDescription, llseek_position
from mqsentry.fs.vfs.tmpfs import TmpfsDirFD
from mqsentry.kernel import waiter
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.fs.mqfs.filesystem import MqueueFilesystem, QueueInode
    from mqsentry.kernel.context import TaskContext


class QueueFD(FileDescription):
    """A queue descriptor (from mq_open, or open(2) of a queue in a mount).

    ``queue`` and ``inode`` are immutable; ``mu`` guards ``flags`` (O_NONBLOCK is read without it on
    the hot path: a single attribute read) and ``pos`` (the status text offset).
    """

    def __init__(self, flags: int, inode: QueueInode) -> None:
        super().__init__(flags, inode)
        self.queue = inode.queue

    def read(self, t: TaskContext, n: int, offset: int | None) -> bytes:
        """``mqueue_read_file``: the status line, honouring the file position."""
        text = self.queue.status().encode()
        with self.mu:
            pos = self.pos if offset is None else offset
            if pos < 0:
                raise SysError(EINVAL)
            data = text[pos:pos + n] if pos < len(text) else b""
            if offset is None:
                self.pos = pos + len(data)
        if data:
            ino = self.inode
            assert ino is not None
            with ino.mu:
                ino.atime_ns = ino.ctime_ns = t.kernel.clock.now_ns()
        return data

    def seek(self, t: TaskContext, offset: int, whence: int) -> int:
        """``default_llseek`` with i_size = FILENT_SIZE."""
        size = self.inode.size() if self.inode is not None else 0
        with self.mu:
            self.pos = llseek_position(self.pos, size, offset, whence)
            return self.pos

    def readiness(self, mask: int) -> int:
        return self.queue.readiness(mask)

    def event_register(self, e: waiter.Entry) -> None:
        self.queue.poll.register(e)

    def event_unregister(self, e: waiter.Entry) -> None:
        self.queue.poll.unregister(e)

    def flush(self, t: TaskContext) -> None:
        """``mqueue_flush_file``: any close by the owning process drops its notification."""
        if self.queue.notification is not None:
            self.queue.remove_notification(t.tg.tgid)

    def release(self) -> None:
        fs: MqueueFilesystem = self.inode.fs  # type: ignore[union-attr,assignment]
        fs.fd_released(self.inode)  # type: ignore[arg-type]


class RootDirFD(TmpfsDirFD):
    """An open mqueue root directory: getdents lists the queues (``dcache_readdir``)."""


__all__ = ["QueueFD", "RootDirFD"]
