"""A tiny FUSE server that gives each sentry mq description a real file the target can hold.

Linux counterpart: fs/fuse (the kernel client: fuse_dev_read/write, fuse_file_poll,
fuse_flush, fuse_release; include/uapi/linux/fuse.h for the wire format), standing in for
ipc/mqueue.c's ``mqueue_file_operations`` (read -> the QSIZE line, poll, flush -> drop the closer's
notification, release). gVisor counterpart: pkg/sentry/fsimpl/fuse is the client side; the server
side here plays the role of pkg/sentry/fsimpl/mqfs's ``queueFD`` for a real process.

Each open description gets a node ``d<n>`` in a private mount that is detached right after it is
mounted: nobody can reach it by path, but the sentry can still ``openat(root_fd, "d<n>")`` and hand
the resulting file to the target with SECCOMP_IOCTL_NOTIF_ADDFD. The host kernel then does dup,
fork, exec (O_CLOEXEC) and close itself; FUSE tells us FLUSH on every close (with the closer's TID)
and RELEASE on the last close of each open.

Permissions and identity (issue 9): the mount has ``default_permissions`` and every node carries the
queue's real mode, owner and group (attributes never cached), so reopening a target's fd through
/proc/<pid>/fd/<n> gets the host kernel's permission check, as ``open(2)`` of a queue in an mqueue
mount does. Every OPEN has a file handle of its own with a description of its own (the sentry's
first open of a node is the mq_open description; a reopen gets a new description of the same queue),
so closing one never touches another. A target's fd is recognised as ours by the mount id and inode
number in /proc/<tid>/fdinfo/<fd> (:meth:`FuseServer.resolve`): the mount is private and detached,
so no file the program creates can have its mount id.

Pitfall 7 of docs/platform-rules.md §4 (FUSE self-deadlock): the sentry closes its own copy of a file right
after ADDFD (from a thread other than the server thread), answers FLUSH from its own threads at
once, and on shutdown closes /dev/fuse first, which aborts the connection.

Locks: ``_mu`` guards ``_nodes``, ``_handles``, ``_next`` and each node's ``khs`` (pending poll
handles) and ``handles``. The server thread never holds ``_mu`` while calling back into the sentry.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import stat as stat_mod
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("mqsentry.platform")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2

# opcodes (include/uapi/linux/fuse.h)
LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
OPEN, READ, WRITE, STATFS, RELEASE = 14, 15, 16, 17, 18
FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR = 25, 26, 27, 28, 29
ACCESS, INTERRUPT, DESTROY, POLL, BATCH_FORGET = 34, 36, 38, 40, 42
FOPEN_DIRECT_IO = 1
FUSE_POLL_SCHEDULE_NOTIFY = 1
FUSE_NOTIFY_POLL = 1
ROOT_ID = 1

IN_HEADER = struct.Struct("=IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, total_extlen, pad
OUT_HEADER = struct.Struct("=IiQ")
INIT_OUT = struct.Struct("=IIIIHHIIHHII24x")
ATTR = struct.Struct("=QQQQQQIIIIIIIIII")
ENTRY_OUT_HEAD = struct.Struct("=QQQQII")
ATTR_OUT_HEAD = struct.Struct("=QII")
OPEN_OUT = struct.Struct("=QII")
READ_IN = struct.Struct("=QQII")
POLL_IN = struct.Struct("=QQII")
POLL_OUT = struct.Struct("=II")
NOTIFY_POLL = struct.Struct("=IiQQ")
assert INIT_OUT.size == 64 and ATTR.size == 88 and IN_HEADER.size == 40

_BUFSIZE = 1 << 17 | 4096


def requests(dev: int, until_mounted: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """The requests read from the /dev/fuse descriptor ``dev`` until its connection ends (ENODEV:
    the last mount is gone or the connection was aborted; EBADF: closed). A request interrupted
    before it was read (ENOENT) is skipped. ``until_mounted``: for a connection whose mount is made
    after the server starts (EPERM until then; an unmounted device cannot be polled, it reports
    EPOLLERR), True while it is worth looking again shortly."""
    while True:
        try:
            req = os.read(dev, _BUFSIZE)
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue
            if e.errno == errno.EPERM and until_mounted is not None and until_mounted():
                time.sleep(0.0005)
                continue
            return
        if not req:
            return
        yield req


def init_reply(body: memoryview) -> bytes:
    """The answer to FUSE_INIT (``body`` is its fuse_init_in): protocol 7.31, the kernel's readahead,
    no optional features; max_background 16, congestion_threshold 12, max_write 4096 (the files are
    a line long), time_gran 1 ns."""
    _major, _minor, readahead, _flags = struct.unpack_from("=IIII", body)
    return INIT_OUT.pack(7, 31, readahead, 0, 16, 12, 4096, 1, 0, 0, 0, 0)


def reply(dev: int, unique: int, body: bytes = b"", err: int = 0) -> None:
    """Answer request ``unique`` on ``dev``: ``body``, or the error ``err``."""
    try:
        os.write(dev, OUT_HEADER.pack(OUT_HEADER.size + len(body), -err, unique) + body)
    except OSError:
        pass  # the requester was interrupted (ENOENT) or the connection is gone


@dataclass(eq=False)
class Node:
    """One exposed queue description. ``obj`` is the mq_open description (immutable); ``khs`` are the
    poll handles to wake, ``entry`` the watch on ``obj`` (set at the node's first poll) and
    ``handles`` the open file handles (fh -> description), all guarded by the server's ``_mu``;
    ``opened`` says the sentry's own first open has happened."""

    nodeid: int
    obj: Any
    khs: set[int] = field(default_factory=set)
    entry: Any = None
    handles: dict[int, Any] = field(default_factory=dict)
    opened: bool = False


class Hooks:
    """What the server asks the sentry (all called from the server thread, never under its lock)."""

    def read(self, obj: Any) -> bytes:  # the file's contents (the QSIZE line)
        return b""

    def poll(self, obj: Any, events: int) -> int:
        return 0

    def attr(self, obj: Any) -> tuple[int, int, int, int, int, int, int]:
        """(mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns)."""
        return (stat_mod.S_IFREG | 0o600, 0, 0, 0, 0, 0, 0)

    def flush(self, obj: Any, tid: int) -> None:
        pass

    def closed(self, obj: Any) -> None:
        """Some fd of ``obj``'s node was closed or replaced (any process, the sentry's included)."""

    def reopen(self, obj: Any, flags: int) -> Any:
        """A new description of ``obj``'s queue for a reopen with open(2) ``flags``."""
        return obj

    def release(self, obj: Any) -> None:
        pass

    def watch(self, obj: Any, wake: Callable[[], None]) -> Any:
        """Register ``wake`` for readiness changes of ``obj``; returns a handle for :meth:`unwatch`."""
        return None

    def unwatch(self, obj: Any, handle: Any) -> None:
        pass


class FuseServer:
    """The server: one /dev/fuse connection, a detached mount and a thread serving requests."""

    #: Every close of one of our files reaches :meth:`Hooks.closed` before close(2) returns.
    reports_closes = True

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self._mu = threading.Lock()
        self._nodes: dict[int, Node] = {}
        #: fh -> (node, description) of every open file handle.
        self._handles: dict[int, tuple[Node, Any]] = {}
        self._next = 2
        self._next_fh = 1
        self.mnt_id = -1
        self._closed = False
        self._my_pid = os.getpid()
        self.dev = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        self.root_fd = -1
        d = tempfile.mkdtemp(prefix="mqsentry-fuse-")
        try:
            opts = f"fd={self.dev},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions".encode()
            if _libc.mount(b"mqsentry", d.encode(), b"fuse.mqsentry", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0:
                e = ctypes.get_errno()
                raise OSError(e, f"mount fuse: {os.strerror(e)}")
            self._thread = threading.Thread(target=self._serve, name="mqsentry-fuse", daemon=True)
            self._thread.start()
            try:
                self.root_fd = os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            finally:
                _libc.umount2(d.encode(), MNT_DETACH)
            self.mnt_id = fdinfo(os.getpid(), self.root_fd)[0]
        except BaseException:
            os.close(self.dev)
            raise
        finally:
            try:
                os.rmdir(d)
            except OSError:
                pass

    # -- sentry side -----------------------------------------------------------------------------------
    def open_file(self, obj: Any, flags: int) -> int:
        """A new node for ``obj``, opened by the sentry with ``flags`` (access mode, O_NONBLOCK); the
        caller hands the fd to the target and closes its own copy at once."""
        with self._mu:
            nid = self._next
            self._next += 1
            node = Node(nid, obj)
            self._nodes[nid] = node
        try:
            return os.open(f"d{nid}", flags | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=self.root_fd)
        except BaseException:
            self._drop(nid)
            raise

    def resolve(self, mnt_id: int, ino: int, flags: int) -> Any:
        """The description behind a target's file, given its fdinfo (None if it is not ours): the
        node is found by inode number on our private mount only; among the node's open handles, one
        with the file's access mode (descriptions of one queue differ in nothing else; O_NONBLOCK is
        taken from the host file by the caller)."""
        if mnt_id != self.mnt_id:
            return None
        node = self._nodes.get(ino)
        if node is None:
            return None
        acc = flags & os.O_ACCMODE
        with self._mu:
            descs = list(node.handles.values())
        for d in descs:
            if d.flags & os.O_ACCMODE == acc:
                return d
        for d in descs:  # mq_open's access mode 3 opens the host file O_RDWR
            if acc == os.O_RDWR and d.flags & os.O_ACCMODE == os.O_ACCMODE:
                return d
        return None

    def objects(self) -> list[Any]:
        with self._mu:
            return [n.obj for n in self._nodes.values()]

    def close(self) -> None:
        """Abort the connection (closing /dev/fuse first: pitfall 7) and drop every node."""
        if self._closed:
            return
        self._closed = True
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1
        os.close(self.dev)
        with self._mu:
            nodes, self._nodes = list(self._nodes.values()), {}
            handles, self._handles = list(self._handles.values()), {}
        for n in nodes:
            self.hooks.unwatch(n.obj, n.entry)
            if not n.opened:
                self.hooks.release(n.obj)
        for _node, desc in handles:
            self.hooks.release(desc)

    # -- poll wake-ups ---------------------------------------------------------------------------------
    def _watch(self, node: Node) -> None:
        """Watch ``node``'s object from its first poll on (until the node is dropped). Not at open:
        a watched queue calls back on every send and receive, a cost for every program that never
        polls its descriptors."""
        entry = self.hooks.watch(node.obj, lambda: self._wake(node))
        with self._mu:
            alive = self._nodes.get(node.nodeid) is node
            if alive:
                node.entry = entry
        if not alive:  # dropped meanwhile: _drop found no entry to unwatch
            self.hooks.unwatch(node.obj, entry)

    def _wake(self, node: Node) -> None:
        with self._mu:
            khs, node.khs = node.khs, set()
        for kh in khs:
            try:
                os.write(self.dev, NOTIFY_POLL.pack(NOTIFY_POLL.size, FUSE_NOTIFY_POLL, 0, kh))
            except OSError:
                pass  # ENOENT: nobody polls with that handle any more

    def _drop(self, nid: int) -> Node | None:
        with self._mu:
            node = self._nodes.pop(nid, None)
        if node is not None:
            self.hooks.unwatch(node.obj, node.entry)
        return node

    # -- server thread ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        for req in requests(self.dev):
            try:
                self._handle(req)
            except Exception:  # pragma: no cover - keep serving
                log.exception("FUSE request failed")

    def _reply(self, unique: int, body: bytes = b"", err: int = 0) -> None:
        reply(self.dev, unique, body, err)

    def _attr(self, nodeid: int) -> bytes | None:
        if nodeid == ROOT_ID:
            return ATTR.pack(ROOT_ID, 0, 0, 0, 0, 0, 0, 0, 0, stat_mod.S_IFDIR | 0o755, 2, 0, 0, 0, 4096, 0)
        node = self._nodes.get(nodeid)
        if node is None:
            return None
        mode, uid, gid, size, at, mt, ct = self.hooks.attr(node.obj)
        return ATTR.pack(nodeid, size, 0, at // 10**9, mt // 10**9, ct // 10**9, at % 10**9, mt % 10**9,
                         ct % 10**9, mode, 1, uid, gid, 0, 4096, 0)

    def _handle(self, req: bytes) -> None:
        _len, op, unique, nodeid, _uid, _gid, pid, _x, _p = IN_HEADER.unpack_from(req)
        body = memoryview(req)[IN_HEADER.size:]
        if op == INIT:
            self._reply(unique, init_reply(body))
        elif op == LOOKUP:
            name = bytes(body).split(b"\0", 1)[0].decode()
            nid = int(name[1:]) if nodeid == ROOT_ID and name[:1] == "d" and name[1:].isdigit() else -1
            attr = self._attr(nid) if nid > 0 else None
            if attr is None:
                self._reply(unique, err=errno.ENOENT)
            else:
                # Neither the entry nor the attributes are cached: every permission check sees
                # the queue's current mode and owner.
                self._reply(unique, ENTRY_OUT_HEAD.pack(nid, 0, 0, 0, 0, 0) + attr)
        elif op == GETATTR:
            attr = self._attr(nodeid)
            if attr is None:
                self._reply(unique, err=errno.ENOENT)
            else:
                self._reply(unique, ATTR_OUT_HEAD.pack(0, 0, 0) + attr)
        elif op == OPEN:
            node = self._nodes.get(nodeid)
            if node is None:
                self._reply(unique, err=errno.ENOENT)
                return
            flags = struct.unpack_from("=I", body)[0]
            # The first open of a node is the sentry's own (nobody else can reach a new node); any
            # later one is a reopen that the kernel has permission-checked: a new description.
            desc = node.obj if not node.opened else self.hooks.reopen(node.obj, flags)
            if desc is None:
                self._reply(unique, err=errno.ENOMEM)
                return
            with self._mu:
                node.opened = True
                fh = self._next_fh
                self._next_fh += 1
                node.handles[fh] = desc
                self._handles[fh] = (node, desc)
            self._reply(unique, OPEN_OUT.pack(fh, FOPEN_DIRECT_IO, 0))
        elif op == READ:
            fh, offset, size, _rf = READ_IN.unpack_from(body)
            h = self._handles.get(fh)
            data = self.hooks.read(h[1]) if h is not None else b""
            self._reply(unique, data[offset:offset + size])
        elif op == POLL:
            fh, kh, flags, events = POLL_IN.unpack_from(body)
            h = self._handles.get(fh)
            node = h[0] if h is not None else None
            if node is None:
                self._reply(unique, err=errno.ENOENT)
                return
            if flags & FUSE_POLL_SCHEDULE_NOTIFY:
                with self._mu:
                    node.khs.add(kh)
                    first = node.entry is None
                if first:
                    self._watch(node)
            # Readiness after the watch is in place, so a change in between is not missed.
            self._reply(unique, POLL_OUT.pack(self.hooks.poll(node.obj, events or 0xFFFF), 0))
        elif op == FLUSH:
            fh = struct.unpack_from("=Q", body)[0]
            h = self._handles.get(fh)
            if h is not None:
                # Before the reply, so the closer's next call cannot find a stale cache entry.
                self.hooks.closed(h[0].nodeid)
                if not os.path.exists(f"/proc/{self._my_pid}/task/{pid}"):
                    self.hooks.flush(h[1], pid)
            self._reply(unique)
        elif op == RELEASE:
            fh = struct.unpack_from("=Q", body)[0]
            with self._mu:
                h = self._handles.pop(fh, None)
                last = h is not None and h[0].handles.pop(fh, None) is not None and not h[0].handles
            if h is not None:
                self.hooks.closed(h[0].nodeid)
                if last:
                    self._drop(h[0].nodeid)
                self.hooks.release(h[1])
            self._reply(unique)
        elif op in (FORGET, BATCH_FORGET, INTERRUPT):
            return  # no reply
        elif op == OPENDIR:
            self._reply(unique, OPEN_OUT.pack(0, 0, 0))
        elif op in (RELEASEDIR, DESTROY):
            self._reply(unique)
        elif op == READDIR:
            self._reply(unique, b"")
        else:
            self._reply(unique, err=errno.ENOSYS)


def fdinfo(tid: int, fd: int) -> tuple[int, int, int]:
    """(mnt_id, ino, flags) of ``fd`` in thread ``tid``'s table, from /proc (the kernel's own view;
    nothing the program controls). OSError if the fd is not open or the thread is gone."""
    with open(f"/proc/{tid}/fdinfo/{fd}", "rb") as f:
        data = f.read()
    mnt = ino = flags = -1
    for line in data.split(b"\n"):
        if line.startswith(b"mnt_id:"):
            mnt = int(line[7:])
        elif line.startswith(b"ino:"):
            ino = int(line[4:])
        elif line.startswith(b"flags:"):
            flags = int(line[6:], 8)
    if mnt < 0 or ino < 0 or flags < 0:
        raise OSError(errno.EINVAL, "unexpected fdinfo")
    return mnt, ino, flags


def fuse_available() -> str | None:
    """None if a FUSE mount can be made here, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if os.geteuid() != 0:
        return "mounting FUSE needs root"
    return None


__all__ = ["FuseServer", "Hooks", "fuse_available"]
