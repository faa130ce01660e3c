"""The 32-bit guest ABIs: i386, arm (EABI) and mips o32 (big- and little-endian).

Linux counterpart: the structures a 32-bit program hands to the message-queue calls, as the kernel
declares them for a 32-bit build (include/uapi/linux/ipc.h and msg.h for the old ``ipc_perm`` and
``msqid_ds``; include/uapi/asm-generic/ipcbuf.h, msgbuf.h and arch/mips/include/uapi/asm/msgbuf.h
for the 64-bit-ready ones; include/uapi/linux/mqueue.h, include/uapi/asm-generic/siginfo.h,
include/uapi/linux/time_types.h) and as x86_64's compat layer mirrors them (include/linux/compat.h,
ipc/compat.c: ``compat_ipc_perm``, ``compat_msqid_ds``, ``compat_msqid64_ds``, ``compat_mq_attr``,
``compat_sigevent``, ``old_timespec32``). MIPS also renumbers errno (arch/mips/include/uapi/asm/errno.h)
and the open flags (arch/mips/include/uapi/asm/fcntl.h). gVisor counterpart: none (gVisor serves
amd64 and arm64 only).

Each structure is a construct definition per byte order with its C ``sizeof`` asserted (Layout), and
testsuite/abi32 compares every size and offset with what Debian's cross compilers say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import construct as cs

from mqsentry.abi.linux import file as F
from mqsentry.abi.linux.layout import Layout

#: The architectures of this module, as ``Kernel(arch=...)`` takes them.
ARCHES32 = ("i386", "arm", "mips", "mipsel")


class _Ints:
    """construct integer fields of one byte order (a guest has exactly one)."""

    def __init__(self, little: bool) -> None:
        self.s16 = cs.Int16sl if little else cs.Int16sb
        self.u16 = cs.Int16ul if little else cs.Int16ub
        self.s32 = cs.Int32sl if little else cs.Int32sb
        self.u32 = cs.Int32ul if little else cs.Int32ub
        self.s64 = cs.Int64sl if little else cs.Int64sb


def _ipc_perm_old(i: _Ints, wide_ids: bool) -> Layout:
    """``struct ipc_perm`` of the old (pre-IPC_64) calls. ``__kernel_uid_t`` and ``__kernel_mode_t``
    are 16 bits on i386 and arm (so ids above 65535 read back as overflowuid), 32 on mips."""
    if wide_ids:
        con = cs.Struct("key" / i.s32, "uid" / i.u32, "gid" / i.u32, "cuid" / i.u32, "cgid" / i.u32,
                        "mode" / i.u32, "seq" / i.u16, cs.Padding(2))
        return Layout("ipc_perm", con, 28)
    con = cs.Struct("key" / i.s32, "uid" / i.u16, "gid" / i.u16, "cuid" / i.u16, "cgid" / i.u16,
                    "mode" / i.u16, "seq" / i.u16)
    return Layout("ipc_perm", con, 16)


def _msqid_ds_old(i: _Ints, perm: Layout, wide_pids: bool) -> Layout:
    """The old ``struct msqid_ds``: 32-bit times, 16-bit counters with 32-bit ``l`` twins, and
    ``__kernel_ipc_pid_t`` pids (16 bits on i386 and arm, 32 on mips)."""
    pid = i.s32 if wide_pids else i.u16
    con = cs.Struct(
        "perm" / perm.con,
        "first" / i.u32,  # kernel pointers, always zero for user space
        "last" / i.u32,
        "stime" / i.s32,
        "rtime" / i.s32,
        "ctime" / i.s32,
        "lcbytes" / i.u32,
        "lqbytes" / i.u32,
        "cbytes" / i.u16,
        "qnum" / i.u16,
        "qbytes" / i.u16,
        *((cs.Padding(2),) if wide_pids else ()),
        "lspid" / pid,
        "lrpid" / pid,
        *(() if wide_pids else (cs.Padding(2),)),
    )
    return Layout("msqid_ds", con, 72 if wide_pids else 56)


def _ipc64_perm(i: _Ints, wide_mode: bool) -> Layout:
    """``struct ipc64_perm`` (asm-generic/ipcbuf.h): ``mode`` is a 16-bit ``__kernel_mode_t`` plus
    padding on i386 and arm, 32 bits on mips."""
    mode = ("mode" / i.u32,) if wide_mode else ("mode" / i.u16, cs.Padding(2))
    con = cs.Struct("key" / i.s32, "uid" / i.u32, "gid" / i.u32, "cuid" / i.u32, "cgid" / i.u32, *mode,
                    "seq" / i.u16, cs.Padding(2), "unused1" / i.u32, "unused2" / i.u32)
    return Layout("ipc64_perm", con, 36)


def _msqid64_ds(i: _Ints, perm: Layout, high_first: bool) -> Layout:
    """``struct msqid64_ds`` for 32-bit: each time is two ``unsigned long`` halves, the high half
    first on big-endian mips (so the pair reads as one 64-bit value there)."""
    def time(name: str) -> tuple[cs.Renamed, cs.Renamed]:
        lo, hi = name / i.u32, f"{name}_high" / i.u32
        return (hi, lo) if high_first else (lo, hi)

    con = cs.Struct(
        "perm" / perm.con,
        *time("stime"), *time("rtime"), *time("ctime"),
        "cbytes" / i.u32,
        "qnum" / i.u32,
        "qbytes" / i.u32,
        "lspid" / i.s32,
        "lrpid" / i.s32,
        "unused4" / i.u32,
        "unused5" / i.u32,
    )
    return Layout("msqid64_ds", con, 88)


def _siginfo(i: _Ints, swapped: bool) -> Layout:
    """``siginfo_t`` (compat_siginfo) as an mq_notify SIGEV_SIGNAL fills it (SI_MESGQ: pid, uid,
    sigval). MIPS swaps ``si_code`` and ``si_errno`` (__ARCH_HAS_SWAPPED_SIGINFO)."""
    head = ("signo" / i.s32, "code" / i.s32, "errno" / i.s32) if swapped else \
        ("signo" / i.s32, "errno" / i.s32, "code" / i.s32)
    con = cs.Struct(*head, "pid" / i.s32, "uid" / i.u32, "value" / i.u32, cs.Padding(104))
    return Layout("siginfo", con, 128)


@dataclass(frozen=True, slots=True)
class Abi32:
    """Everything the message-queue calls of one 32-bit architecture need to know about it.

    Immutable (built once per architecture at import).
    """

    arch: str
    little: bool
    #: Old layouts (a call without IPC_64): ``struct ipc_perm`` and ``struct msqid_ds``.
    ipc_perm: Layout
    msqid_ds: Layout
    ipc64_perm: Layout
    msqid64_ds: Layout
    #: ``struct msgbuf``'s header: a 32-bit ``long mtype``.
    msgbuf: Layout
    #: ``struct ipc_kludge`` of ipc(MSGRCV) version 0: ``{msgp, msgtyp}``.
    ipc_kludge: Layout
    msginfo: Layout
    mq_attr: Layout
    #: The ``unsigned int`` priority mq_timedreceive stores.
    mq_prio: Layout
    sigevent: Layout
    siginfo: Layout
    #: ``old_timespec32`` of mq_timedsend/mq_timedreceive and ``__kernel_timespec`` of the _time64 calls.
    timespec32: Layout
    timespec64: Layout
    #: The architecture has the ipc(2) multiplexer.
    has_ipc: bool
    #: The direct msgctl is ``sys_old_msgctl`` (it strips IPC_64 and picks the layout from it), as on
    #: arm and mips; i386's direct msgctl always means IPC_64.
    msgctl_parses_version: bool
    #: i386 is served as x86_64's compat layer serves it (ipc/compat.c: old layouts truncate, the
    #: ipc(2) MSGRCV checks its ints first); arm and mips as a native 32-bit kernel (ipc/msg.c's
    #: IPC_OLD cases: counters clamp to USHRT_MAX, the ``l`` twins are filled).
    x86_compat: bool = False
    #: The guest's errno values where they differ from asm-generic (mips): generic -> guest.
    errno_out: dict[int, int] = field(default_factory=dict)
    #: The guest's open flags where they differ from this sentry's (amd64) values: (guest, sentry).
    open_flags: tuple[tuple[int, int], ...] = ()
    #: _NSIG of the architecture (128 on mips).
    nsig: int = 64

    def flags_in(self, guest: int) -> int:
        """Open flags as the guest spells them -> the sentry's values (identity off mips)."""
        if not self.open_flags:
            return guest
        out = guest
        for g, _s in self.open_flags:
            out &= ~g
        for g, s in self.open_flags:
            if guest & g == g:
                out |= s
        return out

    def flags_out(self, sentry: int) -> int:
        """The sentry's open flags -> the guest's (the inverse of :meth:`flags_in`)."""
        if not self.open_flags:
            return sentry
        out = sentry
        for _g, s in self.open_flags:
            out &= ~s
        for g, s in self.open_flags:
            if sentry & s == s:
                out |= g
        return out


#: MIPS errno values where they differ from asm-generic (arch/mips/include/uapi/asm/errno.h), as
#: generic -> mips: ENOMSG 42 -> 35, EIDRM 43 -> 36, ENOSYS 38 -> 89, EMSGSIZE 90 -> 97, ETIMEDOUT
#: 110 -> 145, ... testsuite/abi32 regenerates this from both errno.h files when the compilers exist.
MIPS_ERRNO: dict[int, int] = {
    35: 45, 36: 78, 37: 46, 38: 89, 39: 93, 40: 90, 42: 35, 43: 36, 44: 37, 45: 38, 46: 39, 47: 40, 48: 41,
    49: 42, 50: 43, 51: 44, 52: 50, 53: 51, 54: 52, 55: 53, 56: 54, 57: 55, 72: 74, 74: 77, 75: 79, 76: 80,
    77: 81, 78: 82, 79: 83, 80: 84, 81: 85, 82: 86, 83: 87, 84: 88, 85: 91, 86: 92, 87: 94, 88: 95, 89: 96,
    90: 97, 91: 98, 92: 99, 93: 120, 94: 121, 95: 122, 96: 123, 97: 124, 98: 125, 99: 126, 100: 127,
    101: 128, 102: 129, 103: 130, 104: 131, 105: 132, 106: 133, 107: 134, 108: 143, 109: 144, 110: 145,
    111: 146, 112: 147, 113: 148, 114: 149, 115: 150, 116: 151, 117: 135, 118: 137, 119: 138, 120: 139,
    121: 140, 122: 1133, 123: 159, 124: 160, 125: 158, 126: 161, 127: 162, 128: 163, 129: 164, 130: 165,
    131: 166, 132: 167, 133: 168,
}

#: MIPS open flags (arch/mips/include/uapi/asm/fcntl.h) beside this sentry's (asm-generic) values;
#: O_ACCMODE and O_CLOEXEC, O_NOFOLLOW, O_NOATIME, O_PATH share their values and are left alone.
_MIPS_OPEN_FLAGS: tuple[tuple[int, int], ...] = (
    (0x0008, F.O_APPEND),
    (0x0010, F.O_DSYNC),
    (0x0080, F.O_NONBLOCK),
    (0x0100, F.O_CREAT),
    (0x0200, F.O_TRUNC),
    (0x0400, F.O_EXCL),
    (0x0800, F.O_NOCTTY),
    (0x1000, F.O_ASYNC),
    (0x2000, F.O_LARGEFILE),
    (0x4000, F.O_SYNC & ~F.O_DSYNC),  # __O_SYNC (mips O_SYNC is __O_SYNC | O_DSYNC = 0x4010)
    (0x8000, F.O_DIRECT),
    (0x10000, F.O_DIRECTORY),
)


def _build(arch: str) -> Abi32:
    little = arch != "mips"
    mips = arch in ("mips", "mipsel")
    i = _Ints(little)
    perm_old = _ipc_perm_old(i, wide_ids=mips)
    perm64 = _ipc64_perm(i, wide_mode=mips)
    return Abi32(
        arch=arch,
        little=little,
        ipc_perm=perm_old,
        msqid_ds=_msqid_ds_old(i, perm_old, wide_pids=mips),
        ipc64_perm=perm64,
        msqid64_ds=_msqid64_ds(i, perm64, high_first=arch == "mips"),
        msgbuf=Layout("msgbuf", cs.Struct("mtype" / i.s32), 4),
        ipc_kludge=Layout("ipc_kludge", cs.Struct("msgp" / i.u32, "msgtyp" / i.s32), 8),
        msginfo=Layout("msginfo", cs.Struct(
            "msgpool" / i.s32, "msgmap" / i.s32, "msgmax" / i.s32, "msgmnb" / i.s32, "msgmni" / i.s32,
            "msgssz" / i.s32, "msgtql" / i.s32, "msgseg" / i.u16, cs.Padding(2)), 32),
        mq_attr=Layout("mq_attr", cs.Struct(
            "flags" / i.s32, "maxmsg" / i.s32, "msgsize" / i.s32, "curmsgs" / i.s32,
            cs.Padding(16)), 32),  # __reserved[4]: ignored on input, zero on output
        # compat_sigevent: SIGEV_MAX_SIZE (64) bytes; the union starts at 12 (``_tid``, or the
        # SIGEV_THREAD function and attribute pointers at 12 and 16).
        mq_prio=Layout("mq_prio", cs.Struct("prio" / i.u32), 4),
        sigevent=Layout("sigevent", cs.Struct(
            "value" / i.u32, "signo" / i.s32, "notify" / i.s32, "tid" / i.s32, "attribute" / i.u32,
            cs.Padding(44)), 64),
        siginfo=_siginfo(i, swapped=mips),
        timespec32=Layout("old_timespec32", cs.Struct("tv_sec" / i.s32, "tv_nsec" / i.s32), 8),
        # __kernel_timespec: a 64-bit tv_nsec of which only the low 32 bits count (get_timespec64).
        timespec64=Layout("__kernel_timespec", cs.Struct("tv_sec" / i.s64, "tv_nsec" / i.s64), 16),
        has_ipc=arch != "arm",
        msgctl_parses_version=arch != "i386",
        x86_compat=arch == "i386",
        errno_out=MIPS_ERRNO if mips else {},
        open_flags=_MIPS_OPEN_FLAGS if mips else (),
        nsig=128 if mips else 64,
    )


ABIS32: dict[str, Abi32] = {a: _build(a) for a in ARCHES32}


def abi32(arch: str) -> Abi32:
    """The 32-bit ABI of ``arch`` (KeyError for a 64-bit one)."""
    return ABIS32[arch]
