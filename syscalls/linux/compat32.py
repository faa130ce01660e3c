"""The message-queue syscalls of a 32-bit guest (i386, arm EABI, mips o32) and the ipc(2) multiplexer.

Linux counterpart: ipc/compat.c and the COMPAT_SYSCALL_DEFINEs of ipc/msg.c and ipc/mqueue.c
(``compat_ksys_msgsnd``, ``compat_ksys_msgrcv``, ``compat_ksys_msgctl``/``compat_ksys_old_msgctl``,
``copy_compat_msqid_{to,from}_user``, ``get/put_compat_mq_attr``, ``get_compat_sigevent``),
ipc/syscall.c (``ksys_ipc``, ``compat_ksys_ipc``), ipc/msg.c's IPC_OLD cases of
``copy_msqid_{to,from}_user`` for a native 32-bit kernel, ipc/util.c ``ipc_parse_version``, and
kernel/time/time.c (``get_old_timespec32``, ``get_timespec64``). gVisor counterpart: none (gVisor has
no 32-bit ABI).

Each handler takes the registers as the 32-bit guest holds them and applies the C types of the
compat prototypes (``int`` and ``compat_long_t`` sign-extend, pointers and ``compat_size_t``
zero-extend), converts the guest's structures with the layouts of abi/linux/abi32.py, and runs the
same ``do_*`` core as the 64-bit calls, so every check happens in the same order. i386 follows
x86_64's compat layer (the kernel this project can compare with); arm and mips follow a native
32-bit kernel where the two differ (the old msqid_ds, the ipc(2) MSGRCV argument checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mqsentry.abi.linux.abi32 import Abi32
from mqsentry.abi.linux.errno import EINVAL, ENOSYS
from mqsentry.abi.linux.file import O_NONBLOCK
from mqsentry.abi.linux.ipc import IPC_64
from mqsentry.abi.linux.layout import Layout
from mqsentry.abi.linux.msgqueue import (
    MSQID64_DS,
    MTYPE,
)
from mqsentry.abi.linux.time import NSEC_PER_SEC
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux.args import int32, mode_t, uint32
from mqsentry.syscalls.linux.sys_mq import (
    do_mq_getsetattr,
    do_mq_notify,
    do_mq_open,
    do_mq_timedreceive,
    do_mq_timedsend,
    mq_unlink,
)
from mqsentry.syscalls.linux.sys_msgqueue import do_msgctl, do_msgrcv, do_msgsnd, msgget
from mqsentry.syscalls.linux.table import Syscall

MASK64 = 0xFFFF_FFFF_FFFF_FFFF
#: ``overflowuid``/``overflowgid``: what a 16-bit uid field shows for an id above 65535 (SET_UID).
OVERFLOW_ID = 65534
USHRT_MAX = 0xFFFF

# ipc(2) call numbers (include/uapi/linux/ipc.h); the version is in the call's upper 16 bits.
SEMOP, SEMGET, SEMCTL, SEMTIMEDOP = 1, 2, 3, 4
MSGSND, MSGRCV, MSGGET, MSGCTL = 11, 12, 13, 14
SHMAT, SHMDT, SHMGET, SHMCTL = 21, 22, 23, 24
IPC_OLD = 0

#: Generic calls whose argument types are the same width-neutral ints and pointers on a 32-bit guest
#: (the rest of the sentry's table, e.g. fcntl or epoll_ctl, takes structures or ``long``s that
#: differ, and is not served to 32-bit guests).
WIDTH_NEUTRAL = ("close", "read", "getpid", "exit", "unshare", "tkill")


def ipc_parse_version(cmd: int) -> tuple[int, int]:
    """``ipc_parse_version``: (cmd without IPC_64, IPC_64 or IPC_OLD)."""
    if cmd & IPC_64:
        return cmd ^ IPC_64, IPC_64
    return cmd, IPC_OLD


def _fit(lay: Layout, values: dict[str, int]) -> bytes:
    """Pack ``values`` into ``lay`` as C assignment would: each value is cut to its field's width
    (two's complement), as the kernel's ``v.field = in->field`` does."""
    out = []
    for f, bits, signed in _field_kinds(lay):
        v = values.get(f, 0) & ((1 << bits) - 1)
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return lay.pack(*out)


_KINDS: dict[Layout, tuple[tuple[str, int, bool], ...]] = {}


def _field_kinds(lay: Layout) -> tuple[tuple[str, int, bool], ...]:
    """(field, width in bits, signed) per field of ``lay``; a field is signed when all-ones bytes read
    back negative. Cached per layout (layouts are immutable and live for the process)."""
    kinds = _KINDS.get(lay)
    if kinds is None:
        ones = lay.unpack(b"\xff" * lay.size)
        kinds = tuple((f, 8 * lay.sizeof(f), ones[i] < 0) for i, f in enumerate(lay.fields))
        _KINDS[lay] = kinds
    return kinds


def _id16(v: int) -> int:
    """SET_UID into a 16-bit field: ids above 65535 read back as overflowuid."""
    return OVERFLOW_ID if v & ~0xFFFF else v


class Handlers32:
    """The message-queue handlers of one 32-bit ABI. Immutable after construction (no lock)."""

    def __init__(self, abi: Abi32) -> None:
        self.abi = abi
        self._mtype = abi.msgbuf.codec
        self._hdr = abi.msgbuf.size
        self._nonblock = abi.flags_out(O_NONBLOCK)
        self._pack_prio = abi.mq_prio.codec.pack
        perm = abi.ipc_perm
        self._perm16 = perm.sizeof("uid") == 2
        # What compat reads of a struct for IPC_SET: up to the end of msg_qbytes.
        self._set_end64 = abi.msqid64_ds.offsetof("qbytes") + abi.msqid64_ds.sizeof("qbytes")
        self._set_end_old = abi.msqid_ds.offsetof("qbytes") + abi.msqid_ds.sizeof("qbytes")

    # -- SysV ------------------------------------------------------------------------------------------
    def _to_native(self, blob: bytes, mtype: int) -> bytes:
        """A queued message always carries the sentry's 8-byte ``long mtype`` header."""
        return MTYPE.pack(mtype) + blob[self._hdr:]

    def msgsnd(self, t: Task, msqid: int, msgp: int, msgsz: int, msgflg: int, *_: int) -> int:
        # compat_ksys_msgsnd(int msqid, compat_uptr_t msgp, compat_ssize_t msgsz, int msgflg)
        return do_msgsnd(t, int32(msqid), uint32(msgp), int32(msgsz) & MASK64, int32(msgflg),
                         self._mtype.unpack_from, self._hdr, self._to_native)

    def msgrcv(self, t: Task, msqid: int, msgp: int, msgsz: int, msgtyp: int, msgflg: int, *_: int) -> int:
        # compat_ksys_msgrcv(int msqid, compat_uptr_t msgp, compat_ssize_t msgsz, compat_long_t msgtyp,
        # int msgflg)
        return self._msgrcv(t, msqid, uint32(msgp), msgsz, msgtyp, msgflg)

    def _msgrcv(self, t: Task, msqid: int, msgp: int, msgsz: int, msgtyp: int, msgflg: int) -> int:
        blob, n = do_msgrcv(t, int32(msqid), msgp, int32(msgsz) & MASK64, int32(msgtyp) & MASK64, int32(msgflg))
        # compat_do_msg_fill: put_user((compat_long_t)msg->m_type), then the text.
        hdr = self._mtype.pack(int32(MTYPE.unpack_from(blob)[0]))
        try:
            t.copy_out(msgp, hdr + blob[8:8 + n])
        except SysError:
            t.copy_out(msgp, hdr)
            raise
        return n

    def msgctl(self, t: Task, msqid: int, cmd: int, buf: int, *_: int) -> int:
        cmd = int32(cmd)
        if self.abi.msgctl_parses_version:  # sys_old_msgctl (arm, mips)
            cmd, version = ipc_parse_version(cmd)
        else:  # i386's msgctl is compat_sys_msgctl: always IPC_64, the bit is not stripped
            version = IPC_64
        return self._msgctl(t, msqid, cmd, uint32(buf), version)

    def _msgctl(self, t: Task, msqid: int, cmd: int, buf: int, version: int) -> int:
        return do_msgctl(t, int32(msqid), cmd, buf, lambda fields: self.abi.msginfo.pack(*fields),
                         lambda fields: self._msqid_out(dict(zip(MSQID64_DS.fields, fields)), version),
                         lambda t, buf: self._msqid_in(t, buf, version))

    def _msqid_out(self, d: dict[str, int], version: int) -> bytes:
        abi = self.abi
        if version == IPC_64:
            v = {k: d[k] for k in ("cbytes", "qnum", "qbytes", "lspid", "lrpid")}
            v |= {k: val for k, val in d.items() if k.startswith("perm.")}
            for name in ("stime", "rtime", "ctime"):
                v[name] = d[name] & 0xFFFF_FFFF
                v[name + "_high"] = (d[name] >> 32) & 0xFFFF_FFFF
            return _fit(abi.msqid64_ds, v)
        ids = ("perm.uid", "perm.gid", "perm.cuid", "perm.cgid")
        v = {k: d[k] for k in ("perm.key", "perm.mode", "perm.seq", "stime", "rtime", "ctime", "lspid", "lrpid")}
        v |= {k: _id16(d[k]) if self._perm16 else d[k] for k in ids}
        if abi.x86_compat:  # copy_compat_msqid_to_user: plain truncating assignments
            v |= {k: d[k] for k in ("cbytes", "qnum", "qbytes")}
        else:  # copy_msqid_to_user(IPC_OLD): clamp, and fill the 32-bit twins
            v |= {k: min(d[k], USHRT_MAX) for k in ("cbytes", "qnum", "qbytes")}
            v |= {"lcbytes": d["cbytes"], "lqbytes": d["qbytes"]}
        return _fit(abi.msqid_ds, v)

    def _msqid_in(self, t: Task, buf: int, version: int) -> tuple[int, int, int, int]:
        """IPC_SET's copy-in: (uid, gid, mode, msg_qbytes)."""
        abi = self.abi
        lay = abi.msqid64_ds if version == IPC_64 else abi.msqid_ds
        if abi.x86_compat:
            # get_compat_ipc(64)_perm + get_user(msg_qbytes): nothing past msg_qbytes is read.
            end = self._set_end64 if version == IPC_64 else self._set_end_old
            data = t.copy_in(buf, end) + bytes(lay.size - end)
        else:
            data = t.copy_in(buf, lay.size)
        d = lay.to_dict(data)
        qbytes = d["qbytes"]
        if version != IPC_64 and not abi.x86_compat and qbytes == 0:
            qbytes = d["lqbytes"]  # a native kernel takes msg_lqbytes when msg_qbytes is 0
        return d["perm.uid"], d["perm.gid"], d["perm.mode"], qbytes

    # -- ipc(2) ----------------------------------------------------------------------------------------
    def ipc(self, t: Task, call: int, first: int, second: int, third: int, ptr: int, fifth: int) -> int:
        call = uint32(call)
        version = call >> 16
        call &= 0xFFFF
        if call == MSGSND:
            return self.msgsnd(t, first, ptr, second, third)
        if call == MSGRCV:
            if self.abi.x86_compat and (int32(first) < 0 or int32(second) < 0):
                raise SysError(EINVAL)
            if version == 0:  # the {msgp, msgtyp} kludge
                uptr = uint32(ptr)
                if not uptr:
                    raise SysError(EINVAL)
                msgp, msgtyp = self.abi.ipc_kludge.unpack(t.copy_in(uptr, self.abi.ipc_kludge.size))
                return self._msgrcv(t, first, msgp, second, msgtyp, third)
            return self._msgrcv(t, first, uint32(ptr), second, fifth, third)
        if call == MSGGET:
            return msgget(t, first, second)
        if call == MSGCTL:
            cmd, ver = ipc_parse_version(int32(second))
            return self._msgctl(t, first, cmd, uint32(ptr), ver)
        raise SysError(ENOSYS)  # the semaphore and shared-memory calls, and unknown ones

    # -- POSIX -----------------------------------------------------------------------------------------
    def _deadline(self, t: Task, addr: int, lay: Layout, nsec_mask: int) -> int | None:
        if not addr:
            return None
        sec, nsec = lay.unpack(t.copy_in(addr, lay.size))
        nsec &= nsec_mask  # get_timespec64 keeps only tv_nsec's low 32 bits for a 32-bit caller
        if nsec_mask != MASK64 and nsec >> 31 and not self.abi.x86_compat:
            nsec -= 1 << 32  # a native 32-bit kernel's tv_nsec is a (signed) long
        if sec < 0 or not 0 <= nsec < NSEC_PER_SEC:
            raise SysError(EINVAL)
        return sec * NSEC_PER_SEC + nsec  # type: ignore[no-any-return]

    def mq_open(self, t: Task, name: int, oflag: int, mode: int, attr: int, *_: int) -> int:
        qattr = None
        attr = uint32(attr)
        if attr:
            _f, maxmsg, msgsize, _c = self.abi.mq_attr.unpack(t.copy_in(attr, self.abi.mq_attr.size))
            qattr = (maxmsg, msgsize)
        return do_mq_open(t, uint32(name), int32(self.abi.flags_in(uint32(oflag))), mode_t(mode), qattr)

    def mq_unlink(self, t: Task, name: int, *_: int) -> int:
        return mq_unlink(t, uint32(name))

    def mq_timedsend(self, t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int, abs_timeout: int,
                     *_: int) -> int:
        deadline = self._deadline(t, uint32(abs_timeout), self.abi.timespec32, MASK64)
        return do_mq_timedsend(t, mqdes, uint32(msg_ptr), uint32(msg_len), msg_prio, deadline)

    def mq_timedreceive(self, t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int,
                        abs_timeout: int, *_: int) -> int:
        deadline = self._deadline(t, uint32(abs_timeout), self.abi.timespec32, MASK64)
        return do_mq_timedreceive(t, mqdes, uint32(msg_ptr), uint32(msg_len), uint32(msg_prio), deadline,
                                  self._pack_prio)

    def mq_timedsend_time64(self, t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int,
                            abs_timeout: int, *_: int) -> int:
        deadline = self._deadline(t, uint32(abs_timeout), self.abi.timespec64, 0xFFFF_FFFF)
        return do_mq_timedsend(t, mqdes, uint32(msg_ptr), uint32(msg_len), msg_prio, deadline)

    def mq_timedreceive_time64(self, t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int,
                               abs_timeout: int, *_: int) -> int:
        deadline = self._deadline(t, uint32(abs_timeout), self.abi.timespec64, 0xFFFF_FFFF)
        return do_mq_timedreceive(t, mqdes, uint32(msg_ptr), uint32(msg_len), uint32(msg_prio), deadline,
                                  self._pack_prio)

    def mq_notify(self, t: Task, mqdes: int, notification: int, *_: int) -> int:
        ev = None
        notification = uint32(notification)
        if notification:
            value, signo, notify, _tid, _attr = self.abi.sigevent.unpack(
                t.copy_in(notification, self.abi.sigevent.size))
            ev = (value, signo, notify)  # compat_ptr(sigev_value): zero-extended
        return do_mq_notify(t, mqdes, ev)

    def mq_getsetattr(self, t: Task, mqdes: int, mqstat: int, omqstat: int, *_: int) -> int:
        lay = self.abi.mq_attr
        new = None
        mqstat, omqstat = uint32(mqstat), uint32(omqstat)
        if mqstat:
            flags = lay.unpack(t.copy_in(mqstat, lay.size))[0]
            if flags & ~self._nonblock:  # the guest's own O_NONBLOCK (0x80 on mips)
                raise SysError(EINVAL)
            new = O_NONBLOCK if flags else 0
        old_flags, maxmsg, msgsize, curmsgs = do_mq_getsetattr(t, mqdes, new)
        if omqstat:
            t.copy_out(omqstat, lay.pack(self.abi.flags_out(old_flags), maxmsg, msgsize, curmsgs))
        return 0

    # -- the table -------------------------------------------------------------------------------------
    def syscalls(self, generic: dict[str, Syscall]) -> dict[str, Syscall]:
        """This ABI's entries: the width-neutral generic calls plus the 32-bit message-queue calls."""
        out = {name: generic[name] for name in WIDTH_NEUTRAL if name in generic}
        out["msgget"] = generic["msgget"]
        for name in ("msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
                     "mq_timedsend_time64", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr"):
            out[name] = Syscall(name, getattr(self, name))
        if self.abi.has_ipc:
            out["ipc"] = Syscall("ipc", self.ipc, "partial", "message-queue calls only; semaphore and "
                                 "shared-memory calls give ENOSYS")
        if self.abi.errno_out:
            out = {name: Syscall(e.name, errno_translating(e.fn, self.abi.errno_out), e.support, e.note)
                   for name, e in out.items()}
        return out


def errno_translating(fn: Callable[..., int], errno_out: dict[int, int]) -> Callable[..., int]:
    """``fn`` raising the guest's errno values (mips numbers them apart from asm-generic)."""
    def handler(t: Task, *args: Any) -> int:
        try:
            return fn(t, *args)
        except SysError as e:
            guest = errno_out.get(e.errno)
            if guest is None:
                raise
            raise SysError(guest) from None
    return handler


class EnosysTable(dict[int, Callable[..., int]]):
    """A handler dict whose unknown numbers give the guest's own ENOSYS value (89 on mips)."""

    def __init__(self, handlers: dict[int, Callable[..., int]], enosys: int) -> None:
        super().__init__(handlers)
        self._enosys = enosys

    def __missing__(self, nr: int) -> Callable[..., int]:
        enosys = self._enosys

        def unknown(t: Task, *_: int) -> int:
            raise SysError(enosys)
        if not isinstance(nr, int):
            raise KeyError(nr)
        return unknown
