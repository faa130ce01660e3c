"""POSIX message-queue wrappers (kernel level and glibc 2.36 level) and the generic fd helpers the
mq conformance suite needs, over a target's raw syscalls.

Linux counterpart: the mq_* syscalls of ipc/mqueue.c, and glibc's sysdeps/unix/sysv/linux/mq_open.c,
mq_unlink.c, mq_send.c, mq_receive.c, mq_getattr.c, mq_setattr.c (which add a user-space name check,
strip the leading '/', pass mode/attr only with O_CREAT and map mq_unlink's EPERM to EACCES).
gVisor counterpart: none (gVisor's test/syscalls/linux/mq.cc calls glibc directly).

Two levels:

* ``sys_mq_open``/``sys_mq_unlink`` and the other ``mq_*`` calls taking a descriptor are the raw
  syscalls: names are passed as given (no leading '/'), errors are exactly the kernel's.
* ``mq_open``/``mq_unlink``/``mq_send``/``mq_receive``/``mq_getattr``/``mq_setattr``/``mq_close``
  mimic glibc.

Every wrapper raises :class:`LinuxError` with Linux's errno on failure. Arguments that may be a
pointer accept an ``int`` address, so tests can pass bad or edge-of-mapping pointers.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mqsentry.abi.linux.errno import EACCES, EINVAL, EPERM
from mqsentry.abi.linux.file import (
    AT_FDCWD,
    AT_REMOVEDIR,
    DIRENT64_HDR,
    EPOLL_CTL_ADD,
    EPOLL_CTL_DEL,
    EPOLL_CTL_MOD,
    EPOLL_EVENT,
    EPOLLIN,
    EPOLLOUT,
    F_DUPFD,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    O_CREAT,
    POLLERR,
    POLLFD,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    POLLPRI,
    POLLRDBAND,
    POLLRDNORM,
    POLLWRBAND,
    POLLWRNORM,
    STAT,
    STATFS,
)
from mqsentry.abi.linux.limits import RLIMIT64
from mqsentry.abi.linux.mqueue import MQ_ATTR, MQUEUE_MAGIC
from mqsentry.abi.linux.signal import SIGEVENT
from mqsentry.abi.linux.socket import AF_NETLINK, MSG_DONTWAIT, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW
from mqsentry.abi.linux.time import NSEC_PER_SEC, TIMESPEC
from mqsentry.testsuite.libc.errors import LinuxError

_MASK64 = 0xFFFF_FFFF_FFFF_FFFF

def _int(v: int) -> int:
    """A C ``int`` argument as a register value (sign-extended to 64 bits)."""
    return (((v & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000) & _MASK64


def _reg(v: int) -> int:
    """A ``long``/``size_t``/pointer argument as a raw 64-bit register value."""
    return v & _MASK64


@dataclass(frozen=True, slots=True)
class MqAttr:
    """A parsed ``struct mq_attr``."""

    flags: int
    maxmsg: int
    msgsize: int
    curmsgs: int

    def pack(self) -> bytes:
        return MQ_ATTR.pack(self.flags, self.maxmsg, self.msgsize, self.curmsgs)


@dataclass(frozen=True, slots=True)
class Stat:
    """The fields of ``struct stat`` the suite checks."""

    dev: int
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int


@dataclass(frozen=True, slots=True)
class StatFS:
    """The fields of ``struct statfs`` the suite checks."""

    type: int
    bsize: int
    namelen: int


class PosixMixin:
    """POSIX mq and fd wrappers; mixed into :class:`mqsentry.testsuite.libc.Proc` (uses ``ProcCore``)."""

    # Provided by ProcCore (declared for type checkers).
    target: Any
    sys: Any
    call: Any
    buf: Any
    alloc: Any
    read: Any
    cstr: Any

    # -- argument helpers -----------------------------------------------------------------------------
    def _name_ptr(self, name: bytes | str | int) -> int:
        if isinstance(name, int):
            return name
        return self.cstr(name)

    def _timeout_ptr(self, timeout: int | float | tuple[int, int] | None) -> int:
        """NULL, an address, an absolute time in seconds (float) or a raw ``(sec, nsec)`` pair."""
        if timeout is None:
            return 0
        if isinstance(timeout, int):
            return timeout
        if isinstance(timeout, float):
            sec = int(timeout)
            timeout = (sec, round((timeout - sec) * NSEC_PER_SEC))
        return self.buf(TIMESPEC.pack(*timeout))

    def _attr_ptr(self, attr: Any) -> int:
        """NULL, an address, an :class:`MqAttr`, ``(maxmsg, msgsize)`` or ``(flags, maxmsg, msgsize, curmsgs)``."""
        if attr is None:
            return 0
        if isinstance(attr, int):
            return attr
        if isinstance(attr, MqAttr):
            return self.buf(attr.pack())
        if isinstance(attr, dict):
            return self.buf(MQ_ATTR.from_dict(attr))
        if len(attr) == 2:
            return self.buf(MQ_ATTR.pack(0, attr[0], attr[1], 0))
        return self.buf(MQ_ATTR.pack(*attr))

    def deadline(self, seconds_from_now: float) -> tuple[int, int]:
        """An absolute CLOCK_REALTIME deadline of the *target* (mq timeouts are absolute)."""
        sec, nsec = self.clock_gettime(0)  # type: ignore[attr-defined]
        total = sec * NSEC_PER_SEC + nsec + int(seconds_from_now * NSEC_PER_SEC)
        return divmod(total, NSEC_PER_SEC)

    # -- raw mq syscalls ---------------------------------------------------------------------------------
    def sys_mq_open(self, name: bytes | str | int, oflag: int, mode: int = 0, attr: Any = None) -> int:
        """The raw ``mq_open``: ``name`` is the kernel name (no leading '/')."""
        return self.call("mq_open", self._name_ptr(name), _int(oflag), _reg(mode), self._attr_ptr(attr))

    def sys_mq_unlink(self, name: bytes | str | int) -> None:
        self.call("mq_unlink", self._name_ptr(name))

    def mq_timedsend(self, fd: int, data: bytes | int, prio: int = 0, timeout: Any = None,
                     length: int | None = None) -> None:
        """Send ``data`` (bytes, or an address with ``length``) with ``prio`` and an absolute timeout.
        With bytes, ``length`` overrides the length passed to the kernel (the buffer stays len(data)
        bytes, followed by a guard page)."""
        if isinstance(data, int):
            assert length is not None, "an address needs a length"
            ptr, n = data, length
        else:
            n = len(data) if length is None else length
            ptr = self.buf(data)
        self.call("mq_timedsend", _int(fd), ptr, _reg(n), prio & 0xFFFF_FFFF, self._timeout_ptr(timeout))

    def mq_timedreceive(self, fd: int, size: int, timeout: Any = None, want_prio: bool | int = True,
                        buf: int | None = None) -> tuple[bytes, int | None]:
        """Receive into a ``size``-byte buffer (or at ``buf``); returns (message, priority or None).
        ``want_prio`` may be an address for the priority."""
        ptr = self.alloc(max(size, 1)) if buf is None else buf
        if isinstance(want_prio, bool):
            prio_ptr = self.alloc(4) if want_prio else 0
        else:
            prio_ptr = want_prio
        n = self.call("mq_timedreceive", _int(fd), ptr, _reg(size), prio_ptr, self._timeout_ptr(timeout))
        data = self.read(ptr, n) if n else b""
        prio = struct.unpack("<I", self.read(prio_ptr, 4))[0] if prio_ptr and want_prio is True else None
        return data, prio

    def mq_notify(self, fd: int, sigevent: int | dict[str, int] | None = None) -> None:
        """``sigevent``: None (NULL), an address, or a dict of ``SIGEVENT`` fields (``notify``,
        ``signo``, ``value``, ``tid``)."""
        if sigevent is None:
            ptr = 0
        elif isinstance(sigevent, int):
            ptr = sigevent
        else:
            ptr = self.buf(SIGEVENT.from_dict(sigevent))
        self.call("mq_notify", _int(fd), ptr)

    def mq_getsetattr(self, fd: int, new: Any = None, want_old: bool | int = True) -> MqAttr | None:
        """``new``: None, an address, an MqAttr, a dict or ``(flags, maxmsg, msgsize, curmsgs)``.
        ``want_old`` may be an address for the old attributes."""
        if new is None or isinstance(new, int):
            new_ptr = new or 0
        elif isinstance(new, MqAttr):
            new_ptr = self.buf(new.pack())
        elif isinstance(new, dict):
            new_ptr = self.buf(MQ_ATTR.from_dict(new))
        else:
            new_ptr = self.buf(MQ_ATTR.pack(*new))
        if isinstance(want_old, bool):
            old_ptr = self.alloc(MQ_ATTR.size) if want_old else 0
        else:
            old_ptr = want_old
        self.call("mq_getsetattr", _int(fd), new_ptr, old_ptr)
        if old_ptr and want_old is True:
            return MqAttr(*MQ_ATTR.unpack(self.read(old_ptr, MQ_ATTR.size)))
        return None

    # -- glibc-level mq API ------------------------------------------------------------------------------
    @staticmethod
    def _libc_name(name: bytes | str, what: str) -> bytes:
        b = name.encode() if isinstance(name, str) else name
        if not b.startswith(b"/"):
            # glibc refuses the name in user space, without a syscall.
            raise LinuxError(EINVAL, what)
        return b[1:]

    def mq_open(self, name: bytes | str, oflag: int, mode: int = 0o600, attr: Any = None) -> int:
        """glibc ``mq_open``: the name must start with '/', which is stripped; mode and attr are passed
        only with O_CREAT."""
        kname = self._libc_name(name, "mq_open")
        if oflag & O_CREAT:
            return self.sys_mq_open(kname, oflag, mode, attr)
        return self.sys_mq_open(kname, oflag, 0, None)

    def mq_unlink(self, name: bytes | str) -> None:
        """glibc ``mq_unlink``: the name check of mq_open, and EPERM reported as EACCES."""
        kname = self._libc_name(name, "mq_unlink")
        try:
            self.sys_mq_unlink(kname)
        except LinuxError as e:
            if e.errno == EPERM:
                raise LinuxError(EACCES, "mq_unlink") from None
            raise

    def mq_send(self, fd: int, data: bytes, prio: int = 0) -> None:
        self.mq_timedsend(fd, data, prio, None)

    def mq_receive(self, fd: int, size: int) -> tuple[bytes, int]:
        data, prio = self.mq_timedreceive(fd, size, None, True)
        assert prio is not None
        return data, prio

    def mq_getattr(self, fd: int) -> MqAttr:
        attr = self.mq_getsetattr(fd, None, True)
        assert attr is not None
        return attr

    def mq_setattr(self, fd: int, new: Any) -> MqAttr:
        attr = self.mq_getsetattr(fd, new, True)
        assert attr is not None
        return attr

    def mq_close(self, fd: int) -> None:
        self.close(fd)

    # -- generic fd helpers ------------------------------------------------------------------------------
    def close(self, fd: int) -> None:
        self.call("close", _int(fd))

    def read_fd(self, fd: int, n: int) -> bytes:
        p = self.alloc(max(n, 1))
        got = self.call("read", _int(fd), p, _reg(n))
        return self.read(p, got) if got else b""

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        p = self.alloc(max(n, 1))
        got = self.call("pread64", _int(fd), p, _reg(n), _reg(offset))
        return self.read(p, got) if got else b""

    def write_fd(self, fd: int, data: bytes) -> int:
        return self.call("write", _int(fd), self.buf(data), _reg(len(data)))

    def lseek(self, fd: int, offset: int, whence: int) -> int:
        return self.call("lseek", _int(fd), _reg(offset), whence)

    def fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        return self.call("fcntl", _int(fd), cmd, _reg(arg))

    def dup(self, fd: int) -> int:
        return self.call("dup", _int(fd))

    def fchmod(self, fd: int, mode: int) -> None:
        self.call("fchmod", _int(fd), mode)

    def umask(self, mask: int) -> int:
        return self.call("umask", mask)

    def poll(self, fds: Sequence[tuple[int, int]], timeout: float | None = 0) -> list[int]:
        """ppoll(2) on ``(fd, events)`` pairs; ``timeout`` in seconds, None = forever. Returns revents."""
        arr = self.buf(b"".join(POLLFD.pack(fd, ev, 0) for fd, ev in fds))
        if timeout is None:
            tmo = 0
        else:
            tmo = self.buf(TIMESPEC.pack(*divmod(int(timeout * NSEC_PER_SEC), NSEC_PER_SEC)))
        self.call("ppoll", arr, len(fds), tmo, 0, 8)
        raw = self.read(arr, POLLFD.size * len(fds))
        return [POLLFD.unpack_from(raw, i * POLLFD.size)[2] & 0xFFFF for i in range(len(fds))]

    def epoll_create(self) -> int:
        return self.call("epoll_create1", 0)

    def epoll_ctl(self, epfd: int, op: int, fd: int, events: int = 0, data: int = 0) -> None:
        codec = EPOLL_EVENT[self.target.arch]
        self.call("epoll_ctl", _int(epfd), op, _int(fd), self.buf(codec.pack(events, data)))

    def epoll_wait(self, epfd: int, maxevents: int = 8, timeout_ms: int = 0) -> list[tuple[int, int]]:
        """(events, data) pairs that are ready."""
        codec = EPOLL_EVENT[self.target.arch]
        p = self.alloc(codec.size * maxevents)
        n = self.call("epoll_pwait", _int(epfd), p, maxevents, _int(timeout_ms), 0, 8)
        raw = self.read(p, codec.size * n) if n else b""
        return [codec.unpack_from(raw, i * codec.size) for i in range(n)]

    def _stat(self, raw: bytes) -> Stat:
        layout = STAT[self.target.arch]
        d = layout.to_dict(raw)
        return Stat(d["dev"], d["ino"], d["mode"], d["nlink"], d["uid"], d["gid"], d["size"])

    def fstat(self, fd: int) -> Stat:
        size = STAT[self.target.arch].size
        p = self.alloc(size)
        self.call("fstat", _int(fd), p)
        return self._stat(self.read(p, size))

    def stat_path(self, path: str | bytes) -> Stat:
        """newfstatat(AT_FDCWD, path, buf, 0)."""
        size = STAT[self.target.arch].size
        p = self.alloc(size)
        self.call("newfstatat", _int(AT_FDCWD), self.cstr(path), p, 0)
        return self._stat(self.read(p, size))

    def _statfs(self, raw: bytes) -> StatFS:
        d = STATFS.to_dict(raw)
        return StatFS(d["type"], d["bsize"], d["namelen"])

    def statfs(self, path: str | bytes) -> StatFS:
        p = self.alloc(STATFS.size)
        self.call("statfs", self.cstr(path), p)
        return self._statfs(self.read(p, STATFS.size))

    def fstatfs(self, fd: int) -> StatFS:
        p = self.alloc(STATFS.size)
        self.call("fstatfs", _int(fd), p)
        return self._statfs(self.read(p, STATFS.size))

    def openat(self, path: str | bytes, flags: int, mode: int = 0, dirfd: int = AT_FDCWD) -> int:
        return self.call("openat", _int(dirfd), self.cstr(path), _int(flags), mode)

    def mkdir(self, path: str | bytes, mode: int = 0o755) -> None:
        self.call("mkdirat", _int(AT_FDCWD), self.cstr(path), mode)

    def rmdir(self, path: str | bytes) -> None:
        self.call("unlinkat", _int(AT_FDCWD), self.cstr(path), AT_REMOVEDIR)

    def unlink_path(self, path: str | bytes) -> None:
        self.call("unlinkat", _int(AT_FDCWD), self.cstr(path), 0)

    def mount(self, source: str | bytes, target: str | bytes, fstype: str | bytes, flags: int = 0,
              data: bytes | None = None) -> None:
        dptr = self.cstr(data) if data is not None else 0
        self.call("mount", self.cstr(source), self.cstr(target), self.cstr(fstype), _reg(flags), dptr)

    def umount(self, target: str | bytes, flags: int = 0) -> None:
        self.call("umount2", self.cstr(target), flags)

    def getdents(self, fd: int, size: int = 4096) -> list[tuple[str, int, int]]:
        """Every entry of the directory (getdents64 until it returns 0): (name, ino, d_type)."""
        out: list[tuple[str, int, int]] = []
        p = self.alloc(size)
        while True:
            n = self.call("getdents64", _int(fd), p, size)
            if n == 0:
                return out
            raw = self.read(p, n)
            off = 0
            while off < n:
                ino, _, reclen, dtype = DIRENT64_HDR.unpack_from(raw, off)
                name = raw[off + DIRENT64_HDR.size: off + reclen].split(b"\0", 1)[0]
                out.append((name.decode(), ino, dtype))
                off += reclen

    def socket_netlink(self, protocol: int = NETLINK_ROUTE, flags: int = SOCK_CLOEXEC) -> int:
        """``socket(AF_NETLINK, SOCK_RAW|flags, protocol)``, as glibc's SIGEV_THREAD helper opens it."""
        return self.call("socket", AF_NETLINK, SOCK_RAW | flags, protocol)

    def recv(self, fd: int, n: int, flags: int = 0) -> bytes:
        p = self.alloc(max(n, 1))
        got = self.call("recvfrom", _int(fd), p, _reg(n), flags, 0, 0)
        return self.read(p, got) if got else b""

    def prlimit(self, resource: int, new: tuple[int, int] | None = None, pid: int = 0) -> tuple[int, int]:
        """prlimit64(pid, resource, new, old): returns the old (soft, hard) limit."""
        new_ptr = self.buf(RLIMIT64.pack(*(v & _MASK64 for v in new))) if new is not None else 0
        old = self.alloc(RLIMIT64.size)
        self.call("prlimit64", pid, resource, new_ptr, old)
        return RLIMIT64.unpack(self.read(old, RLIMIT64.size))


__all__ = ["PosixMixin", "MqAttr", "Stat", "StatFS", "MQUEUE_MAGIC",
           # re-exported ABI constants the mq tests use with these wrappers
           "AT_FDCWD", "AT_REMOVEDIR", "EPOLL_CTL_ADD", "EPOLL_CTL_DEL", "EPOLL_CTL_MOD", "EPOLLIN", "EPOLLOUT",
           "F_DUPFD", "F_GETFD", "F_GETFL", "F_SETFD", "F_SETFL", "POLLERR", "POLLHUP", "POLLIN", "POLLNVAL",
           "POLLOUT", "POLLPRI", "POLLRDBAND", "POLLRDNORM", "POLLWRBAND", "POLLWRNORM", "MSG_DONTWAIT"]
