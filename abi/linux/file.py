"""File ABI: open flags, fcntl commands, ``struct stat``/``statfs``, dirents, poll and epoll, mount flags.

Linux counterpart: include/uapi/asm-generic/fcntl.h (arm64 overrides O_DIRECTORY, O_NOFOLLOW,
O_DIRECT and O_LARGEFILE in arch/arm64/include/uapi/asm/fcntl.h), arch/x86/include/uapi/asm/stat.h
and include/uapi/asm-generic/stat.h, include/uapi/asm-generic/statfs.h, include/linux/dirent.h,
include/uapi/asm-generic/poll.h, include/uapi/linux/eventpoll.h, include/uapi/linux/mount.h and
include/linux/fs.h (MNT_* umount flags). gVisor counterpart: pkg/abi/linux/file.go, file_amd64.go,
file_arm64.go, fs.go, poll.go, epoll.go, epoll_amd64.go, epoll_arm64.go, mount.go.
"""

from __future__ import annotations

from typing import Final

import construct as cs

from mqsentry.abi.linux.layout import Layout

# -- open(2) flags common to both architectures ---------------------------------------------------------
# Final: the mq send/receive hot paths test these (see the package docstring).
O_RDONLY: Final = 0o0
O_WRONLY: Final = 0o1
O_RDWR: Final = 0o2
O_ACCMODE: Final = 0o3
O_CREAT: Final = 0o100
O_EXCL: Final = 0o200
O_NOCTTY: Final = 0o400
O_TRUNC: Final = 0o1000
O_APPEND: Final = 0o2000
O_NONBLOCK: Final = 0o4000
O_DSYNC: Final = 0o10000
O_ASYNC: Final = 0o20000
O_NOATIME: Final = 0o1000000
O_CLOEXEC: Final = 0o2000000
O_SYNC: Final = 0o4000000 | O_DSYNC
O_PATH: Final = 0o10000000
O_TMPFILE_BASE: Final = 0o20000000  # __O_TMPFILE; O_TMPFILE adds O_DIRECTORY (arch-specific)

#: The flags whose values differ between amd64 (asm-generic) and arm64.
ARCH_O_FLAGS: dict[str, dict[str, int]] = {
    "amd64": {"O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000, "O_DIRECTORY": 0o200000, "O_NOFOLLOW": 0o400000},
    "arm64": {"O_DIRECTORY": 0o40000, "O_NOFOLLOW": 0o100000, "O_DIRECT": 0o200000, "O_LARGEFILE": 0o400000},
}
# i386 spells them as amd64 does and arm as arm64; a mips guest's flags are translated to the amd64
# values where they enter the sentry (abi/linux/abi32.py), so the sentry sees amd64's.
ARCH_O_FLAGS["i386"] = ARCH_O_FLAGS["mips"] = ARCH_O_FLAGS["mipsel"] = ARCH_O_FLAGS["amd64"]
ARCH_O_FLAGS["arm"] = ARCH_O_FLAGS["arm64"]
# amd64 values, for code that only targets x86_64 (use :func:`o_flags` for arch-neutral code).
O_DIRECT = ARCH_O_FLAGS["amd64"]["O_DIRECT"]
O_LARGEFILE = ARCH_O_FLAGS["amd64"]["O_LARGEFILE"]
O_DIRECTORY = ARCH_O_FLAGS["amd64"]["O_DIRECTORY"]
O_NOFOLLOW = ARCH_O_FLAGS["amd64"]["O_NOFOLLOW"]


class OFlags:
    """The open flags of one architecture (immutable)."""

    __slots__ = ("O_DIRECT", "O_LARGEFILE", "O_DIRECTORY", "O_NOFOLLOW", "O_TMPFILE", "VALID_OPEN_FLAGS",
                 "SETFL_MASK")

    def __init__(self, arch: str) -> None:
        v = ARCH_O_FLAGS[arch]
        self.O_DIRECT = v["O_DIRECT"]
        self.O_LARGEFILE = v["O_LARGEFILE"]
        self.O_DIRECTORY = v["O_DIRECTORY"]
        self.O_NOFOLLOW = v["O_NOFOLLOW"]
        self.O_TMPFILE = O_TMPFILE_BASE | self.O_DIRECTORY
        # VALID_OPEN_FLAGS (include/linux/fcntl.h); O_DSYNC/O_SYNC included via __O_SYNC.
        self.VALID_OPEN_FLAGS = (O_RDONLY | O_WRONLY | O_RDWR | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND
                                 | O_NONBLOCK | O_DSYNC | O_ASYNC | self.O_DIRECT | self.O_LARGEFILE
                                 | self.O_DIRECTORY | self.O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_SYNC | O_PATH
                                 | O_TMPFILE_BASE)
        # SETFL_MASK (fs/fcntl.c): what F_SETFL may change.
        self.SETFL_MASK = O_APPEND | O_NONBLOCK | O_ASYNC | self.O_DIRECT | O_NOATIME


_OFLAGS = {a: OFlags(a) for a in ARCH_O_FLAGS}


def o_flags(arch: str) -> OFlags:
    """The open-flag values of ``arch`` ("amd64" or "arm64")."""
    return _OFLAGS[arch]


FD_CLOEXEC = 1

# -- fcntl(2) commands -----------------------------------------------------------------------------------
F_DUPFD = 0
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_GETLK = 5
F_SETLK = 6
F_SETLKW = 7
F_SETOWN = 8
F_GETOWN = 9
F_SETSIG = 10
F_GETSIG = 11
F_SETOWN_EX = 15
F_GETOWN_EX = 16
F_OFD_GETLK = 36
F_OFD_SETLK = 37
F_OFD_SETLKW = 38
F_LINUX_SPECIFIC_BASE = 1024
F_SETLEASE = F_LINUX_SPECIFIC_BASE + 0
F_GETLEASE = F_LINUX_SPECIFIC_BASE + 1
F_NOTIFY = F_LINUX_SPECIFIC_BASE + 2
F_DUPFD_CLOEXEC = F_LINUX_SPECIFIC_BASE + 6
F_SETPIPE_SZ = F_LINUX_SPECIFIC_BASE + 7
F_GETPIPE_SZ = F_LINUX_SPECIFIC_BASE + 8
F_ADD_SEALS = F_LINUX_SPECIFIC_BASE + 9
F_GET_SEALS = F_LINUX_SPECIFIC_BASE + 10

# -- *at(2) ----------------------------------------------------------------------------------------------
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000

SEEK_SET = 0
SEEK_CUR = 1
SEEK_END = 2
SEEK_DATA = 3
SEEK_HOLE = 4

#: PATH_MAX and NAME_MAX (include/uapi/linux/limits.h).
PATH_MAX = 4096
NAME_MAX = 255

# -- inode modes -----------------------------------------------------------------------------------------
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000
S_ISUID = 0o4000
S_ISGID = 0o2000
S_ISVTX = 0o1000
S_IRWXUGO = 0o777
S_IALLUGO = 0o7777
S_IXUGO = 0o111

# d_type values of linux_dirent64.
DT_UNKNOWN = 0
DT_FIFO = 1
DT_CHR = 2
DT_DIR = 4
DT_BLK = 6
DT_REG = 8
DT_LNK = 10
DT_SOCK = 12


def dtype_of(mode: int) -> int:
    """``S_DT(mode)``: the dirent type of an inode mode."""
    return (mode & S_IFMT) >> 12


# -- struct stat -------------------------------------------------------------------------------------------
#: x86_64 ``struct stat`` (arch/x86/include/uapi/asm/stat.h).
STAT_AMD64 = Layout("stat_amd64", cs.Struct(
    "dev" / cs.Int64ul, "ino" / cs.Int64ul, "nlink" / cs.Int64ul,
    "mode" / cs.Int32ul, "uid" / cs.Int32ul, "gid" / cs.Int32ul, cs.Padding(4),
    "rdev" / cs.Int64ul, "size" / cs.Int64sl, "blksize" / cs.Int64sl, "blocks" / cs.Int64sl,
    "atime" / cs.Int64sl, "atime_nsec" / cs.Int64ul, "mtime" / cs.Int64sl, "mtime_nsec" / cs.Int64ul,
    "ctime" / cs.Int64sl, "ctime_nsec" / cs.Int64ul, cs.Padding(24),
), 144)

#: arm64 ``struct stat`` (include/uapi/asm-generic/stat.h).
STAT_ARM64 = Layout("stat_arm64", cs.Struct(
    "dev" / cs.Int64ul, "ino" / cs.Int64ul, "mode" / cs.Int32ul, "nlink" / cs.Int32ul,
    "uid" / cs.Int32ul, "gid" / cs.Int32ul, "rdev" / cs.Int64ul, cs.Padding(8),
    "size" / cs.Int64sl, "blksize" / cs.Int32sl, cs.Padding(4), "blocks" / cs.Int64sl,
    "atime" / cs.Int64sl, "atime_nsec" / cs.Int64ul, "mtime" / cs.Int64sl, "mtime_nsec" / cs.Int64ul,
    "ctime" / cs.Int64sl, "ctime_nsec" / cs.Int64ul, cs.Padding(8),
), 128)

STAT: dict[str, Layout] = {"amd64": STAT_AMD64, "arm64": STAT_ARM64}

#: ``struct statfs`` (the same 120 bytes on amd64 and arm64).
STATFS = Layout("statfs", cs.Struct(
    "type" / cs.Int64sl, "bsize" / cs.Int64sl, "blocks" / cs.Int64ul, "bfree" / cs.Int64ul,
    "bavail" / cs.Int64ul, "files" / cs.Int64ul, "ffree" / cs.Int64ul, "fsid" / cs.Array(2, cs.Int32sl),
    "namelen" / cs.Int64sl, "frsize" / cs.Int64sl, "flags" / cs.Int64sl, "spare" / cs.Array(4, cs.Int64sl),
), 120)

#: Header of ``struct linux_dirent64`` (d_name follows, NUL-terminated, record padded to 8 bytes).
DIRENT64_HDR = Layout("linux_dirent64", cs.Struct(
    "ino" / cs.Int64ul, "off" / cs.Int64sl, "reclen" / cs.Int16ul, "type" / cs.Int8ul,
), 19)


def dirent64_reclen(namelen: int) -> int:
    """Record length of a linux_dirent64 with a ``namelen``-byte name (ALIGN(19 + namelen + 1, 8))."""
    return (DIRENT64_HDR.size + namelen + 1 + 7) & ~7


# -- poll ------------------------------------------------------------------------------------------------------
POLLIN = 0x0001
POLLPRI = 0x0002
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010
POLLNVAL = 0x0020
POLLRDNORM = 0x0040
POLLRDBAND = 0x0080
POLLWRNORM = 0x0100
POLLWRBAND = 0x0200
POLLMSG = 0x0400
POLLREMOVE = 0x1000
POLLRDHUP = 0x2000

POLLFD = Layout("pollfd", cs.Struct("fd" / cs.Int32sl, "events" / cs.Int16sl, "revents" / cs.Int16sl), 8)

# -- epoll -------------------------------------------------------------------------------------------------------
EPOLL_CLOEXEC = O_CLOEXEC
EPOLL_CTL_ADD = 1
EPOLL_CTL_DEL = 2
EPOLL_CTL_MOD = 3

EPOLLIN = 0x00000001
EPOLLPRI = 0x00000002
EPOLLOUT = 0x00000004
EPOLLERR = 0x00000008
EPOLLHUP = 0x00000010
EPOLLNVAL = 0x00000020
EPOLLRDNORM = 0x00000040
EPOLLRDBAND = 0x00000080
EPOLLWRNORM = 0x00000100
EPOLLWRBAND = 0x00000200
EPOLLMSG = 0x00000400
EPOLLRDHUP = 0x00002000
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
#: Flags that are not events (EP_PRIVATE_BITS).
EPOLL_PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
#: EPOLL_MAXEVENTS: INT_MAX / sizeof(struct epoll_event).
EPOLL_MAXEVENTS_AMD64 = 0x7FFF_FFFF // 12
EPOLL_MAXEVENTS_ARM64 = 0x7FFF_FFFF // 16

#: ``struct epoll_event``: packed (12 bytes) on x86_64, naturally aligned (16) elsewhere.
EPOLL_EVENT_AMD64 = Layout("epoll_event_amd64", cs.Struct("events" / cs.Int32ul, "data" / cs.Int64ul), 12)
EPOLL_EVENT_ARM64 = Layout("epoll_event_arm64",
                           cs.Struct("events" / cs.Int32ul, cs.Padding(4), "data" / cs.Int64ul), 16)
EPOLL_EVENT: dict[str, Layout] = {"amd64": EPOLL_EVENT_AMD64, "arm64": EPOLL_EVENT_ARM64}

# -- mount(2) flags (include/uapi/linux/mount.h) -----------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_KERNMOUNT = 1 << 22
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MS_NOUSER = 1 << 31
MS_MGC_VAL = 0xC0ED0000
MS_MGC_MSK = 0xFFFF0000
MS_PROPAGATION = MS_SHARED | MS_SLAVE | MS_UNBINDABLE | MS_PRIVATE

# umount2(2) flags (include/linux/fs.h).
MNT_FORCE = 0x1
MNT_DETACH = 0x2
MNT_EXPIRE = 0x4
UMOUNT_NOFOLLOW = 0x8

# statfs magics (include/uapi/linux/magic.h).
TMPFS_MAGIC = 0x01021994
MQUEUE_MAGIC = 0x19800202
PROC_SUPER_MAGIC = 0x9FA0
