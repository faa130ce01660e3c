"""One IPC namespace's mqueue filesystem, served to real processes through a FUSE connection.

Linux counterpart: ipc/mqueue.c's filesystem side (``mqueue_dir_inode_operations``: lookup, create,
unlink; ``mqueue_file_operations``: read -> the QSIZE line, poll, flush; ``simple_statfs``,
``simple_setattr``; ``dcache_readdir`` for the root) as a mount of ``mqueue_get_tree`` shows them.
gVisor counterpart: pkg/sentry/fsimpl/mqfs (``rootInode``, ``queueInode``, ``queueFD``), which
gVisor's VFS serves to its own tasks; here the callers are real processes and the VFS is the host's.

Every request goes to the sentry's own engine (fs/mqfs ``MqueueFilesystem``, the namespace's queue
registry that mq_open and mq_unlink use), so a queue made by open(O_CREAT) in a mount is mq_open-able
and vice versa. One server per mount: each mount(2) of mqueue that the platform serves gets a
connection of its own (mqmount.py makes the mount); mount namespaces copied later share it, as they
share a superblock in Linux.

Permissions: the connection has ``default_permissions`` and reports the real mode, owner and group
with zero cache timeouts, so the host VFS makes Linux's checks itself with the caller's real
credentials (search and write on the 01777 root for create, the sticky rule for unlink, owner or
CAP_FOWNER/CAP_CHOWN for chmod/chown, read/write for open). The engine checks again with the
credentials read for the caller (the TID in the request header is the kernel's word, and the thread
waits for our reply, so it cannot be reused meanwhile; the fsuid/fsgid read must match the header's).

Locks: ``_mu`` guards ``_nodes`` (nodeid -> [inode, lookup count]), ``_open`` (fh -> description),
``_polls`` (nodeid -> poll handles to notify) and ``_next_fh``. It is never held while calling into
the engine.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mqsentry.abi.linux.limits import RLIM_NLIMITS, RLIMIT_MSGQUEUE
from mqsentry.kernel import waiter
from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.platform import fuse, procfs

if TYPE_CHECKING:
    from mqsentry.fs.mqfs import MqueueFilesystem, QueueFD, QueueInode
    from mqsentry.kernel.context import TaskContext

log = logging.getLogger("mqsentry.platform")

UNLINK, SYMLINK, MKNOD, MKDIR, RMDIR, RENAME, LINK = 10, 6, 8, 9, 11, 12, 13
CREATE, RENAME2 = 35, 45
SETATTR_IN = struct.Struct("=IIQQQQQQIIIIIIII")
CREATE_IN = struct.Struct("=IIII")
MKNOD_IN = struct.Struct("=IIII")
OPEN_IN = struct.Struct("=II")
FORGET_IN = struct.Struct("=Q")
BATCH_FORGET_IN = struct.Struct("=II")
FORGET_ONE = struct.Struct("=QQ")
KSTATFS = struct.Struct("=QQQQQIIII24x")
DIRENT = struct.Struct("=QQII")
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE, FATTR_ATIME, FATTR_MTIME = 1, 2, 4, 8, 16, 32
FATTR_ATIME_NOW, FATTR_MTIME_NOW = 128, 256
_DT_DIR, _DT_REG = 4, 8
_INF = (1 << 64) - 1
_PAGE = 4096
_NAME_MAX = 255


@dataclass(frozen=True, slots=True)
class _Group:
    """What the engine reads of the caller's process: its tgid and resource limits. Immutable."""

    tgid: int
    rlimits: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Caller:
    """The requesting thread as the engine sees it (a ``TaskContext`` for the filesystem calls that
    take one: credentials, process limits, the kernel's clock). Immutable."""

    tid: int
    kernel: Any
    tg: _Group
    creds: Credentials


def _limits(tid: int) -> list[tuple[int, int]]:
    """The caller's RLIMIT_MSGQUEUE (the only limit the filesystem reads), from /proc."""
    lims = [(_INF, _INF)] * RLIM_NLIMITS
    try:
        with open(f"/proc/{tid}/limits", "rb") as f:
            for line in f:
                if line.startswith(b"Max msgqueue size"):
                    soft, hard = line[len(b"Max msgqueue size"):].split()[:2]
                    lims[RLIMIT_MSGQUEUE] = (_INF if soft == b"unlimited" else int(soft),
                                             _INF if hard == b"unlimited" else int(hard))
    except (OSError, ValueError):
        pass
    return lims


class MqueueFuse:
    """The server of one FUSE connection showing ``fs`` (one IPC namespace's mqueue filesystem).

    ``creds_for(tid, creds)`` keeps the capabilities that count for the namespace (userns.py). The
    server owns ``dev`` (the /dev/fuse descriptor the mount was made with)."""

    def __init__(self, fs: MqueueFilesystem, creds_for: Callable[[int, Credentials], Credentials],
                 on_close: Callable[[int], None] | None = None,
                 refresh: Callable[[], None] | None = None) -> None:
        self.fs = fs
        self.creds_for = creds_for
        #: Called before a create, with no lock held (MqMounts.refresh: is the namespace still alive?).
        self.refresh = refresh
        #: Told the inode number of a queue file whenever some fd of it was closed (mqfd's cache).
        self.on_close = on_close
        self.dev = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        #: st_dev of the mount (set by the mounter once the superblock exists).
        self.st_dev = -1
        self._mu = threading.Lock()
        self._nodes: dict[int, list[Any]] = {}
        self._open: dict[int, QueueFD] = {}
        self._polls: dict[int, set[int]] = {}
        self._watches: dict[int, tuple[Any, waiter.Entry]] = {}
        self._next_fh = 1
        self._closed = False
        self._my_pid = os.getpid()
        self._thread: threading.Thread | None = None
        # The mount shows fs's names even after its IPC namespace dies (Linux's user mount keeps the
        # superblock); close() gives the count back.
        fs.host_mounted(+1)

    def start(self) -> None:
        """Serve (after the mount exists: an unmounted /dev/fuse cannot be read)."""
        self._thread = threading.Thread(target=self._serve, name="mqsentry-mqueue-fuse", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Abort the connection and drop every open description (the sentry is going away)."""
        with self._mu:  # the FUSE thread (ENODEV) and the sentry's stop may both close
            if self._closed:
                return
            self._closed = True
        os.close(self.dev)
        with self._mu:
            handles, self._open = list(self._open.values()), {}
            watches, self._watches = list(self._watches.values()), {}
        for q, e in watches:
            q.poll.unregister(e)
        for d in handles:
            d.decref()
        self.fs.host_mounted(-1)

    @property
    def alive(self) -> bool:
        return not self._closed

    # -- what mqfd asks ---------------------------------------------------------------------------------
    def description(self, ino: int, flags: int) -> Any:
        """An open description of queue ``ino`` through this connection with the access mode of
        ``flags`` (descriptions of one queue differ in nothing else; O_NONBLOCK is synced from the host
        file by the caller), or None."""
        acc = flags & os.O_ACCMODE
        with self._mu:
            descs = [d for d in self._open.values() if d.inode is not None and d.inode.ino == ino]
        for d in descs:
            if d.flags & os.O_ACCMODE == acc:
                return d
        return None

    # -- the caller ----------------------------------------------------------------------------------
    def _caller(self, pid: int, uid: int, gid: int) -> TaskContext:
        st = procfs.read_status(pid) if pid > 0 else None
        if st is not None and st.creds.fsuid == uid and st.creds.fsgid == gid:
            creds = self.creds_for(pid, st.creds)
            tgid = st.tgid
        else:
            # Not readable (or not the thread the header names): the kernel's fsuid/fsgid, no caps.
            creds = Credentials(uid, uid, uid, uid, gid, gid, gid, gid, (), 0, 0, 0, 0, 0)
            tgid = pid
        return cast("TaskContext", Caller(pid, self.fs.kernel, _Group(tgid, _limits(pid)), creds))

    # -- server thread ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        for req in fuse.requests(self.dev):
            try:
                self._handle(req)
            except Exception:  # pragma: no cover - keep serving
                log.exception("mqueue FUSE request failed")
        if not self._closed:
            self.close()

    def _reply(self, unique: int, body: bytes = b"", err: int = 0) -> None:
        fuse.reply(self.dev, unique, body, err)

    def _inode(self, nodeid: int) -> Any:
        if nodeid == fuse.ROOT_ID:
            return self.fs.root
        with self._mu:
            ent = self._nodes.get(nodeid)
        return ent[0] if ent is not None else None

    def _attr(self, ino: Any) -> bytes:
        st = ino.stat()
        nodeid = fuse.ROOT_ID if ino is self.fs.root else ino.ino
        return fuse.ATTR.pack(nodeid, st.size, 0, st.atime_ns // 10**9, st.mtime_ns // 10**9,
                              st.ctime_ns // 10**9, st.atime_ns % 10**9, st.mtime_ns % 10**9, st.ctime_ns % 10**9,
                              st.mode, st.nlink, st.uid, st.gid, 0, _PAGE, 0)

    def _entry(self, ino: Any) -> bytes:
        """An entry reply for ``ino`` (counted as one lookup); nothing is cached by the kernel."""
        with self._mu:
            ent = self._nodes.setdefault(ino.ino, [ino, 0])
            ent[1] += 1
        return fuse.ENTRY_OUT_HEAD.pack(ino.ino, 0, 0, 0, 0, 0) + self._attr(ino)

    def _forget(self, nodeid: int, n: int) -> None:
        with self._mu:
            ent = self._nodes.get(nodeid)
            if ent is not None:
                ent[1] -= n
                if ent[1] <= 0:
                    del self._nodes[nodeid]

    def _handle(self, req: bytes) -> None:
        _len, op, unique, nodeid, uid, gid, pid, _x, _p = fuse.IN_HEADER.unpack_from(req)
        body = memoryview(req)[fuse.IN_HEADER.size:]
        if op == fuse.INIT:
            self._reply(unique, fuse.init_reply(body))
        elif op == fuse.LOOKUP:
            self._lookup(unique, nodeid, _name(body))
        elif op == fuse.FORGET:
            self._forget(nodeid, FORGET_IN.unpack_from(body)[0])
        elif op == fuse.BATCH_FORGET:
            count = BATCH_FORGET_IN.unpack_from(body)[0]
            for i in range(count):
                nid, n = FORGET_ONE.unpack_from(body, BATCH_FORGET_IN.size + i * FORGET_ONE.size)
                self._forget(nid, n)
        elif op == fuse.GETATTR:
            ino = self._inode(nodeid)
            if ino is None:
                self._reply(unique, err=errno.ENOENT)
            else:
                self._reply(unique, fuse.ATTR_OUT_HEAD.pack(0, 0, 0) + self._attr(ino))
        elif op == fuse.SETATTR:
            self._setattr(unique, nodeid, body, pid, uid, gid)
        elif op == CREATE:
            self._create(unique, nodeid, body, pid, uid, gid)
        elif op == fuse.OPEN:
            self._open_file(unique, nodeid, OPEN_IN.unpack_from(body)[0])
        elif op == fuse.READ:
            fh, offset, size, _rf = fuse.READ_IN.unpack_from(body)
            with self._mu:
                d = self._open.get(fh)
            if d is None:
                self._reply(unique, err=errno.EBADF)
                return
            self._reply(unique, _read(d, self._caller(pid, uid, gid), offset, size))
        elif op == fuse.WRITE:
            self._reply(unique, err=errno.EINVAL)  # mqueue_file_operations has no write
        elif op == fuse.POLL:
            self._poll(unique, body)
        elif op == fuse.FLUSH:
            fh = struct.unpack_from("=Q", body)[0]
            with self._mu:
                d = self._open.get(fh)
            if d is not None and not os.path.exists(f"/proc/{self._my_pid}/task/{pid}"):
                # (A close by the sentry itself -- its pidfd_getfd copy in MqMounts.resolve -- is not
                # the program's: it neither drops a notification nor invalidates mqfd's cache.)
                self._closed_fd(d)
                q = d.queue
                if q.notification is not None and pid > 0:
                    st = procfs.read_status(pid)
                    if st is not None:
                        q.remove_notification(st.tgid)  # mqueue_flush_file
            self._reply(unique)
        elif op == fuse.RELEASE:
            fh = struct.unpack_from("=Q", body)[0]
            with self._mu:
                d = self._open.pop(fh, None)
            if d is not None:
                self._closed_fd(d)
                self._unwatch_if_unused(d)
                d.decref()
            self._reply(unique)
        elif op == UNLINK:
            self._unlink(unique, nodeid, _name(body), pid, uid, gid)
        elif op == fuse.OPENDIR:
            self._reply(unique, fuse.OPEN_OUT.pack(0, 0, 0))
        elif op == fuse.READDIR:
            _fh, offset, size, _rf = fuse.READ_IN.unpack_from(body)
            self._reply(unique, self._readdir(offset, size))
        elif op in (fuse.RELEASEDIR, fuse.DESTROY):
            self._reply(unique)
        elif op == fuse.STATFS:
            # simple_statfs: f_bsize PAGE_SIZE, f_namelen NAME_MAX, the counts zero.
            self._reply(unique, KSTATFS.pack(0, 0, 0, 0, 0, _PAGE, _NAME_MAX, _PAGE, 0))
        elif op == MKNOD:
            self._mknod(unique, nodeid, body, pid, uid, gid)
        elif op in (MKDIR, RMDIR, SYMLINK, LINK, RENAME, RENAME2):
            self._reply(unique, err=errno.EPERM)  # the mqueue root has no such inode operation
        elif op == fuse.INTERRUPT:
            return
        else:
            self._reply(unique, err=errno.ENOSYS)

    # -- operations ---------------------------------------------------------------------------------
    def _lookup(self, unique: int, parent: int, raw: bytes) -> None:
        if parent != fuse.ROOT_ID:
            self._reply(unique, err=errno.ENOTDIR)
            return
        from mqsentry.fs.mqfs import decode_name

        ino = self.fs.root.children.get(decode_name(raw))
        if ino is None:
            # No negative entry is cached either (an ENOENT reply caches nothing).
            self._reply(unique, err=errno.ENOENT)
        else:
            self._reply(unique, self._entry(ino))

    def _refresh_ns(self) -> None:
        """A create needs to know whether the namespace still exists (``mqueue_create_attr``: EACCES
        once it is gone); only a namespace the host pins can have died unseen."""
        ns = self.fs.ns
        if self.refresh is not None and getattr(ns, "pins", False):
            self.refresh()

    def _create(self, unique: int, parent: int, body: memoryview, pid: int, uid: int, gid: int) -> None:
        """open(O_CREAT) of a missing name (``mqueue_create``: a queue with the namespace's default
        attributes; ``mode`` already lost the umask in the host VFS)."""
        from mqsentry.fs.mqfs import decode_name

        flags, mode, _umask, _oflags = CREATE_IN.unpack_from(body)
        name = decode_name(bytes(body[CREATE_IN.size:]).split(b"\0", 1)[0])
        t = self._caller(pid, uid, gid)
        self._refresh_ns()
        try:
            d = cast("QueueFD", self.fs.root.create(t, name, mode & 0o7777, flags | os.O_CREAT))
        except SysError as e:
            self._reply(unique, err=e.errno)
            return
        fh = self._add_handle(d)
        self._reply(unique, self._entry(d.inode) + fuse.OPEN_OUT.pack(fh, fuse.FOPEN_DIRECT_IO, 0))

    def _mknod(self, unique: int, parent: int, body: memoryview, pid: int, uid: int, gid: int) -> None:
        """mknod(2): a regular file is ``vfs_create`` (a queue, as open(O_CREAT) makes); any other
        type has no inode operation on the mqueue root (EPERM)."""
        from mqsentry.fs.mqfs import decode_name

        mode, _rdev, _umask, _pad = MKNOD_IN.unpack_from(body)
        if not stat_mod.S_ISREG(mode):
            self._reply(unique, err=errno.EPERM)
            return
        name = decode_name(bytes(body[MKNOD_IN.size:]).split(b"\0", 1)[0])
        self._refresh_ns()
        try:
            d = cast("QueueFD", self.fs.root.create(self._caller(pid, uid, gid), name, mode & 0o7777,
                                                   os.O_CREAT | os.O_EXCL))
        except SysError as e:
            self._reply(unique, err=e.errno)
            return
        ino = d.inode
        d.decref()  # the queue stays (it has its name); nobody has it open
        self._reply(unique, self._entry(ino))

    def _open_file(self, unique: int, nodeid: int, flags: int) -> None:
        ino = self._inode(nodeid)
        if ino is None or ino is self.fs.root:
            self._reply(unique, err=errno.ENOENT if ino is None else errno.EISDIR)
            return
        fs = self.fs
        with fs.mu:
            d = fs.new_fd_locked(cast("QueueInode", ino), flags)
        fh = self._add_handle(d)
        self._reply(unique, fuse.OPEN_OUT.pack(fh, fuse.FOPEN_DIRECT_IO, 0))

    def _add_handle(self, d: QueueFD) -> int:
        with self._mu:
            fh = self._next_fh
            self._next_fh += 1
            self._open[fh] = d
        return fh

    def _closed_fd(self, d: QueueFD) -> None:
        if self.on_close is not None and d.inode is not None:
            self.on_close(d.inode.ino)

    def _unlink(self, unique: int, parent: int, raw: bytes, pid: int, uid: int, gid: int) -> None:
        from mqsentry.fs.mqfs import decode_name

        if parent != fuse.ROOT_ID:
            self._reply(unique, err=errno.ENOTDIR)
            return
        try:
            self.fs.unlink_queue(self._caller(pid, uid, gid), decode_name(raw))
        except SysError as e:
            self._reply(unique, err=e.errno)
            return
        self._reply(unique)

    def _setattr(self, unique: int, nodeid: int, body: memoryview, pid: int, uid: int, gid: int) -> None:
        (valid, _pad, _fh, _size, _lock, atime, mtime, _ctime, atimens, mtimens, _ctimens, mode, _u4, new_uid,
         new_gid, _u5) = SETATTR_IN.unpack_from(body)
        ino = self._inode(nodeid)
        if ino is None:
            self._reply(unique, err=errno.ENOENT)
            return
        t = self._caller(pid, uid, gid)
        try:
            if valid & (FATTR_MODE | FATTR_UID | FATTR_GID):
                ino.setattr(t, mode=mode & 0o7777 if valid & FATTR_MODE else None,
                            uid=new_uid if valid & FATTR_UID else None, gid=new_gid if valid & FATTR_GID else None)
        except SysError as e:
            self._reply(unique, err=e.errno)
            return
        if valid & (FATTR_ATIME | FATTR_MTIME):
            # simple_setattr: utimensat's times (the host VFS checked owner/write permission).
            now = self.fs.kernel.clock.now_ns()
            with ino.mu:
                if valid & FATTR_ATIME:
                    ino.atime_ns = now if valid & FATTR_ATIME_NOW else atime * 10**9 + atimens
                if valid & FATTR_MTIME:
                    ino.mtime_ns = now if valid & FATTR_MTIME_NOW else mtime * 10**9 + mtimens
                ino.ctime_ns = now
        # FATTR_SIZE (O_TRUNC, truncate): accepted, the size stays FILENT_SIZE (docs: not served).
        self._reply(unique, fuse.ATTR_OUT_HEAD.pack(0, 0, 0) + self._attr(ino))

    def _poll(self, unique: int, body: memoryview) -> None:
        fh, kh, flags, events = fuse.POLL_IN.unpack_from(body)
        with self._mu:
            d = self._open.get(fh)
        if d is None:
            self._reply(unique, err=errno.EBADF)
            return
        if flags & fuse.FUSE_POLL_SCHEDULE_NOTIFY:
            self._watch(d, kh)
        self._reply(unique, fuse.POLL_OUT.pack(d.queue.readiness(events or 0xFFFF), 0))

    def _watch(self, d: QueueFD, kh: int) -> None:
        ino = d.inode.ino if d.inode is not None else 0
        new = None
        with self._mu:
            self._polls.setdefault(ino, set()).add(kh)
            if ino not in self._watches:
                new = waiter.Entry(None, waiter.ALL_EVENTS, callback=lambda _mask: self._wake(ino))
                self._watches[ino] = (d.queue, new)
        if new is not None:
            d.queue.poll.register(new)

    def _unwatch_if_unused(self, d: QueueFD) -> None:
        ino = d.inode.ino if d.inode is not None else 0
        with self._mu:
            if any(o.inode is d.inode for o in self._open.values()):
                return
            w = self._watches.pop(ino, None)
            self._polls.pop(ino, None)
        if w is not None:
            w[0].poll.unregister(w[1])

    def _wake(self, ino: int) -> None:
        with self._mu:
            khs = self._polls.pop(ino, set())
        for kh in khs:
            try:
                os.write(self.dev, fuse.NOTIFY_POLL.pack(fuse.NOTIFY_POLL.size, fuse.FUSE_NOTIFY_POLL, 0, kh))
            except OSError:
                pass  # nobody polls with that handle any more

    def _readdir(self, offset: int, size: int) -> bytes:
        root = self.fs.root
        entries: list[tuple[int, bytes, int]] = [(root.ino, b".", _DT_DIR), (root.ino, b"..", _DT_DIR)]
        entries += [(ino.ino, name.encode("utf-8", "surrogateescape"), _DT_REG) for name, ino in root.readdir()]
        out = bytearray()
        for i in range(offset, len(entries)):
            ino, raw, typ = entries[i]
            rec = DIRENT.pack(ino, i + 1, len(raw), typ) + raw
            rec += b"\0" * (-len(rec) % 8)
            if len(out) + len(rec) > size:
                break
            out += rec
        return bytes(out)


def _name(body: memoryview) -> bytes:
    return bytes(body).split(b"\0", 1)[0]


def _read(d: QueueFD, t: TaskContext, offset: int, size: int) -> bytes:
    """``mqueue_read_file`` at ``offset`` (the host keeps the file position)."""
    try:
        return d.read(t, size, offset)
    except SysError:
        return b""


__all__ = ["Caller", "MqueueFuse"]
