"""Fallback backing for queue descriptors: one end of a socketpair per description.

Linux counterpart: none directly; it stands in for ipc/mqueue.c's ``struct file`` when the FUSE
backing (kernel/platform/fuse.py) cannot be mounted (no /dev/fuse, not root). The peer end, kept by
the sentry, reports POLLHUP when the target's last copy is closed, which plays
``mqueue_evict_inode``'s part (drop the description). gVisor counterpart: none.

Limits (docs/platform-rules.md §5): read() on such an fd blocks instead of returning the QSIZE line,
poll() reports "writable, never readable", fstat() says S_IFSOCK, F_GETFL shows O_RDWR whatever
the access mode, and there is no FLUSH: an owner closing one of several fds keeps its mq_notify
registration until its last fd of that description closes or the process exits.

Identity (issue 9): a target's fd is ours when /proc/<tid>/fdinfo/<fd> names the sockets'
mount (sockfs) and the inode of one of our sockets -- values only the kernel supplies.

Locks: ``_mu`` guards ``_by_ino`` and ``_by_peer``; the watcher thread owns the poll object.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import threading
from typing import Any


class SocketBackend:
    def __init__(self, hooks: Any) -> None:
        self.hooks = hooks
        self._mu = threading.Lock()
        self._by_ino: dict[int, Any] = {}
        self._by_peer: dict[int, tuple[int, socket.socket]] = {}
        self._poll = select.poll()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poll.register(self._wake, select.POLLIN)
        self._closed = False
        self.mnt_id = self._sockfs_mnt_id()
        self._thread = threading.Thread(target=self._watch, name="mqsentry-sockfd", daemon=True)
        self._thread.start()

    def open_file(self, obj: Any, flags: int) -> int:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        if flags & os.O_NONBLOCK:
            fcntl.fcntl(a.fileno(), fcntl.F_SETFL, os.O_NONBLOCK)
        ino = os.fstat(a.fileno()).st_ino
        with self._mu:
            self._by_ino[ino] = obj
            self._by_peer[b.fileno()] = (ino, b)
        self._poll.register(b.fileno(), select.POLLRDHUP)
        os.eventfd_write(self._wake, 1)
        return a.detach()

    @staticmethod
    def _sockfs_mnt_id() -> int:
        from mqsentry.kernel.platform.fuse import fdinfo

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            return fdinfo(os.getpid(), s.fileno())[0]
        finally:
            s.close()

    def resolve(self, mnt_id: int, ino: int, flags: int) -> Any:
        """The description behind a target's file given its fdinfo (None: not one of our sockets)."""
        if mnt_id != self.mnt_id:
            return None
        return self._by_ino.get(ino)

    def objects(self) -> list[Any]:
        with self._mu:
            return list(self._by_ino.values())

    def close(self) -> None:
        self._closed = True
        os.eventfd_write(self._wake, 1)
        self._thread.join(1)
        with self._mu:
            peers, self._by_peer = list(self._by_peer.values()), {}
            objs, self._by_ino = list(self._by_ino.values()), {}
        for _, s in peers:
            s.close()
        for o in objs:
            self.hooks.release(o)
        os.close(self._wake)

    def _watch(self) -> None:
        while not self._closed:
            for fd, _ev in self._poll.poll():
                if fd == self._wake:
                    try:
                        os.eventfd_read(self._wake)
                    except BlockingIOError:
                        pass
                    continue
                with self._mu:
                    ent = self._by_peer.pop(fd, None)
                    obj = self._by_ino.pop(ent[0], None) if ent is not None else None
                self._poll.unregister(fd)
                if ent is not None:
                    ent[1].close()
                if obj is not None:
                    self.hooks.release(obj)


__all__ = ["SocketBackend"]
