"""Sockets: just enough AF_NETLINK for glibc's SIGEV_THREAD mq_notify (socket, read, recvfrom, recvmsg).

Linux counterpart: net/socket.c (``__sys_socket``, ``__sys_recvfrom``, ``___sys_recvmsg``,
``move_addr_to_user``) and net/netlink/af_netlink.c (``netlink_create``, ``netlink_recvmsg``,
``netlink_getsockbyfilp``, ``netlink_sendskb``). gVisor counterpart: pkg/sentry/syscalls/linux/sys_socket.go
and pkg/sentry/socket/netlink (``Socket``).

The kernel side of this netlink socket only ever *receives*: mq_notify's SIGEV_THREAD registration
queues its 32-byte cookie here when the notification fires (NOTIFY_WOKENUP) or is removed
(NOTIFY_REMOVED), which is exactly what glibc's helper thread ``recv()``s. Sending (routing requests)
is not modelled: write gives EINVAL.
"""

from __future__ import annotations

import struct
import threading
from collections import deque
from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import (
    EAFNOSUPPORT,
    EAGAIN,
    EFAULT,
    EINVAL,
    EMSGSIZE,
    ENOTSOCK,
    EOPNOTSUPP,
    EPROTONOSUPPORT,
    ERESTARTSYS,
    ESOCKTNOSUPPORT,
)
from mqsentry.abi.linux.file import O_CLOEXEC, O_NONBLOCK, O_RDWR, S_IFSOCK
from mqsentry.abi.linux.socket import (
    AF_MAX,
    AF_NETLINK,
    IOVEC,
    MSG_DONTWAIT,
    MSG_OOB,
    MSG_PEEK,
    MSG_TRUNC,
    MSGHDR,
    SOCK_CLOEXEC,
    SOCK_DGRAM,
    SOCK_MAX,
    SOCK_NONBLOCK,
    SOCK_RAW,
    SOCK_TYPE_MASK,
    SOCKADDR_NL,
    UIO_MAXIOV,
)
from mqsentry.fs.vfs.context import fd_table
from mqsentry.fs.vfs.file import FileDescription, anon_inode_dev
from mqsentry.kernel import waiter
from mqsentry.kernel.context import TaskContext
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux.args import int32, uint32, uint64
from mqsentry.syscalls.linux.table import Syscall

if TYPE_CHECKING:
    from mqsentry.fs.vfs.inode import Stat

#: Netlink protocols a stock kernel registers (socket() of any other protocol is EPROTONOSUPPORT).
REGISTERED_PROTOCOLS = frozenset({0, 2, 4, 6, 7, 9, 10, 11, 12, 15, 16})
#: The sockaddr_nl of a message from the kernel (nl_pid 0, no groups).
_KERNEL_ADDR = SOCKADDR_NL.pack(AF_NETLINK, 0, 0)
_I32 = struct.Struct("<i")
_MAX_RW = 0x7FFF_F000  # MAX_RW_COUNT


class NetlinkSocket(FileDescription):
    """A netlink socket that receives kernel datagrams (Linux ``struct netlink_sock``).

    Immutable: ``sock_family``, ``sock_type``, ``protocol``, ``ino``. ``_rmu`` (a leaf, taken
    after the mq queue lock by :meth:`deliver`) guards ``_rq``, the queue of received datagrams;
    ``_waiters`` has its own lock. ``mu`` (from FileDescription) guards ``flags``.
    """

    sock_family = AF_NETLINK
    _next_ino = 1
    _ino_mu = threading.Lock()

    def __init__(self, flags: int, sock_type: int, protocol: int) -> None:
        super().__init__(flags)
        self.sock_type = sock_type
        self.protocol = protocol
        self._rmu = threading.Lock()
        self._rq: deque[bytes] = deque()
        self._waiters = waiter.Queue()
        with NetlinkSocket._ino_mu:
            self.ino = NetlinkSocket._next_ino
            NetlinkSocket._next_ino += 1

    # -- the kernel side ----------------------------------------------------------------------------
    def deliver(self, data: bytes) -> None:
        """``netlink_sendskb``: queue a datagram from the kernel and wake readers."""
        with self._rmu:
            self._rq.append(data)
        self._waiters.notify(waiter.EVENT_IN | waiter.EVENT_RDNORM)

    # -- receiving ----------------------------------------------------------------------------------
    def _take(self, peek: bool) -> bytes | None:
        with self._rmu:
            if not self._rq:
                return None
            return self._rq[0] if peek else self._rq.popleft()

    def recv(self, t: TaskContext, flags: int) -> bytes:
        """The next datagram (``skb_recv_datagram``): EAGAIN when empty and non-blocking, otherwise
        sleep (ERESTARTSYS on a signal: no SO_RCVTIMEO, so the timeout is infinite)."""
        if flags & MSG_OOB:
            raise SysError(EOPNOTSUPP)
        peek = bool(flags & MSG_PEEK)
        data = self._take(peek)
        if data is not None:
            return data
        if flags & MSG_DONTWAIT or self.flags & O_NONBLOCK:
            raise SysError(EAGAIN)
        t.clear_wakeup()
        e = waiter.Entry(t, waiter.EVENT_IN)
        self._waiters.register(e)
        try:
            while True:
                data = self._take(peek)
                if data is not None:
                    return data
                if t.block(None):
                    raise SysError(ERESTARTSYS)
        finally:
            self._waiters.unregister(e)

    def read(self, t: TaskContext, n: int, offset: int | None) -> bytes:
        """read(2) = recv with no flags: a datagram, truncated to ``n`` (the rest is dropped)."""
        return self.recv(t, 0)[:n]

    def readiness(self, mask: int) -> int:
        ready = waiter.EVENT_OUT | waiter.EVENT_WRNORM
        if self._rq:
            ready |= waiter.EVENT_IN | waiter.EVENT_RDNORM
        return ready & mask

    def event_register(self, e: waiter.Entry) -> None:
        self._waiters.register(e)

    def event_unregister(self, e: waiter.Entry) -> None:
        self._waiters.unregister(e)

    def stat(self, t: TaskContext) -> Stat:
        from mqsentry.fs.vfs.inode import Stat

        # sockfs: S_IFSOCK|0777 owned by the creator; the sentry reports root.
        return Stat(mode=S_IFSOCK | 0o777, ino=self.ino, dev=anon_inode_dev(), nlink=1, uid=0, gid=0, size=0,
                    atime_ns=0, mtime_ns=0, ctime_ns=0)

    def release(self) -> None:
        with self._rmu:
            self._rq.clear()


def socket_of(t: Task, fd: int) -> NetlinkSocket:
    """``sockfd_lookup_light``: EBADF for a bad fd, ENOTSOCK for a file that is not a socket."""
    desc = fd_table(t).get(fd)
    if getattr(desc, "sock_family", None) is None:
        raise SysError(ENOTSOCK)
    return desc  # type: ignore[return-value]


# -- syscalls ------------------------------------------------------------------------------------------
def socket(t: Task, family: int, type: int, protocol: int, *_: int) -> int:
    fam, typ, proto = int32(family), int32(type), int32(protocol)
    flags = typ & ~SOCK_TYPE_MASK
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise SysError(EINVAL)
    typ &= SOCK_TYPE_MASK
    if fam < 0 or fam >= AF_MAX:
        raise SysError(EAFNOSUPPORT)
    if typ < 0 or typ >= SOCK_MAX:
        raise SysError(EINVAL)
    if fam != AF_NETLINK:
        raise SysError(EAFNOSUPPORT)  # the sentry has no other socket families
    if typ not in (SOCK_RAW, SOCK_DGRAM):
        raise SysError(ESOCKTNOSUPPORT)
    if proto not in REGISTERED_PROTOCOLS:
        raise SysError(EPROTONOSUPPORT)
    sock = NetlinkSocket(O_RDWR | (O_NONBLOCK if flags & SOCK_NONBLOCK else 0), typ, proto)
    try:
        return fd_table(t).install(t, sock, bool(flags & O_CLOEXEC))
    finally:
        sock.decref()


def _put_addr(t: Task, addr: int, addrlen_ptr: int) -> None:
    """``move_addr_to_user``: copy min(len, 12) bytes of the sender's address and store 12."""
    if not addr:
        return
    raw = t.copy_in(addrlen_ptr, 4)
    (ulen,) = _I32.unpack(raw)
    if ulen < 0:
        raise SysError(EINVAL)
    n = min(ulen, len(_KERNEL_ADDR))
    if n:
        t.copy_out(addr, _KERNEL_ADDR[:n])
    t.copy_out(addrlen_ptr, _I32.pack(len(_KERNEL_ADDR)))


def recvfrom(t: Task, fd: int, ubuf: int, size: int, flags: int, addr: int, addr_len: int, *_: int) -> int:
    n = uint64(size)
    if n > _MAX_RW:
        n = _MAX_RW
    sock = socket_of(t, int32(fd))
    fl = uint32(flags)
    data = sock.recv(t, fl)
    copied = min(n, len(data))
    # netlink_recvmsg frees the datagram before reporting a copy fault: the message is lost.
    t.copy_out(ubuf, data[:copied])
    _put_addr(t, addr, addr_len)
    return len(data) if fl & MSG_TRUNC else copied


def recvmsg(t: Task, fd: int, msg: int, flags: int, *_: int) -> int:
    """recvmsg for iovecs and the source address; no control messages are ever produced."""
    hdr = t.copy_in(msg, MSGHDR.size)
    name, namelen, iov, iovlen, _control, _controllen, _mflags = MSGHDR.unpack(hdr)
    if iovlen > UIO_MAXIOV:
        raise SysError(EMSGSIZE)
    vecs = []
    total = 0
    if iovlen:
        raw = t.copy_in(iov, iovlen * IOVEC.size)
        for i in range(iovlen):
            base, ln = IOVEC.unpack_from(raw, i * IOVEC.size)
            if ln > 0x7FFF_FFFF_FFFF_FFFF:
                raise SysError(EINVAL)
            vecs.append((base, ln))
            total += ln
            if total > 0x7FFF_FFFF_FFFF_FFFF:
                raise SysError(EINVAL)
    sock = socket_of(t, int32(fd))
    fl = uint32(flags)
    data = sock.recv(t, fl)
    copied = min(total, len(data))
    off = 0
    for base, ln in vecs:
        if off >= copied:
            break
        chunk = data[off:off + min(ln, copied - off)]
        t.copy_out(base, chunk)
        off += len(chunk)
    out_flags = MSG_TRUNC if len(data) > total else 0
    # msg_namelen, msg_controllen and msg_flags are written back (__put_user of the fields).
    if name:
        if namelen < 0:
            raise SysError(EINVAL)
        k = min(namelen, len(_KERNEL_ADDR))
        if k:
            t.copy_out(name, _KERNEL_ADDR[:k])
    try:
        t.copy_out(msg + 8, _I32.pack(len(_KERNEL_ADDR) if name else 0))
        t.copy_out(msg + 40, struct.pack("<Q", 0))
        t.copy_out(msg + 48, _I32.pack(out_flags))
    except SysError:
        raise SysError(EFAULT) from None
    return len(data) if fl & MSG_TRUNC else copied


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("socket", socket, "partial", "AF_NETLINK (SOCK_RAW/SOCK_DGRAM) only; other families EAFNOSUPPORT"),
    Syscall("recvfrom", recvfrom, "partial", "netlink sockets: kernel datagrams (mq_notify SIGEV_THREAD cookies)"),
    Syscall("recvmsg", recvmsg, "partial", "netlink sockets: iovecs and source address, no control data"),
)}

__all__ = ["SYSCALLS", "NetlinkSocket", "socket_of"]
