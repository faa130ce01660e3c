"""Socket ABI: the address families, socket types and flags the sentry's netlink socket needs.

Linux counterpart: include/linux/socket.h (AF_*, MSG_*), include/linux/net.h (SOCK_*),
include/uapi/linux/netlink.h (NETLINK_*, ``struct sockaddr_nl``), include/uapi/linux/uio.h (UIO_MAXIOV).
gVisor counterpart: pkg/abi/linux/socket.go and netlink.go.
"""

from __future__ import annotations

import construct as cs

from mqsentry.abi.linux.layout import Layout

AF_UNSPEC = 0
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
AF_PACKET = 17
#: NPROTO / AF_MAX: families at or above it are EAFNOSUPPORT.
AF_MAX = 46

SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_RDM = 4
SOCK_SEQPACKET = 5
SOCK_DCCP = 6
SOCK_PACKET = 10
SOCK_MAX = 11
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000

MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_CTRUNC = 0x8
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
MSG_WAITALL = 0x100
MSG_NOSIGNAL = 0x4000
MSG_CMSG_CLOEXEC = 0x40000000

NETLINK_ROUTE = 0
NETLINK_USERSOCK = 2
NETLINK_SOCK_DIAG = 4
NETLINK_XFRM = 6
NETLINK_AUDIT = 9
NETLINK_NETFILTER = 12
NETLINK_KOBJECT_UEVENT = 15
NETLINK_GENERIC = 16
#: MAX_LINKS: netlink protocols are 0..31.
NETLINK_MAX_LINKS = 32

UIO_MAXIOV = 1024

#: ``struct sockaddr_nl`` (12 bytes).
SOCKADDR_NL = Layout(
    "sockaddr_nl",
    cs.Struct("family" / cs.Int16ul, cs.Padding(2), "pid" / cs.Int32ul, "groups" / cs.Int32ul),
    12,
)

#: ``struct msghdr`` as recvmsg/sendmsg take it on 64-bit (56 bytes).
MSGHDR = Layout(
    "msghdr",
    cs.Struct(
        "name" / cs.Int64ul,
        "namelen" / cs.Int32sl,
        cs.Padding(4),
        "iov" / cs.Int64ul,
        "iovlen" / cs.Int64ul,
        "control" / cs.Int64ul,
        "controllen" / cs.Int64ul,
        "flags" / cs.Int32sl,
        cs.Padding(4),
    ),
    56,
)

#: ``struct iovec`` (16 bytes).
IOVEC = Layout("iovec", cs.Struct("base" / cs.Int64ul, "len" / cs.Int64ul), 16)
