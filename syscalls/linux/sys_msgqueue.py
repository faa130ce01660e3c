"""SysV message-queue syscalls: msgget, msgsnd, msgrcv, msgctl.

Linux counterpart: ipc/msg.c (``ksys_msgget``, ``ksys_msgsnd``/``do_msgsnd``,
``ksys_msgrcv``/``do_msgrcv``/``do_msg_fill``, ``ksys_msgctl``). gVisor counterpart:
pkg/sentry/syscalls/linux/sys_msgqueue.go.

These handlers own everything that touches user memory and the C argument types, in Linux's order
of checks; the engine (``mqsentry.kernel.msgqueue``) owns the queues. msgsnd and msgrcv are hot paths: the
user's ``struct msgbuf`` (mtype + text) is copied in with one read and is itself the queued message,
and a received message is copied out with one write.

Undo log: a task whose ``undo`` is a list (the platform's tasks, see kernel/platform/loop.py)
gets, for every message msgrcv dequeues, a callable appended that puts the message back
(``Queue.unreceive``); the platform runs it when the reply cannot reach the killed caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.abi.linux.ipc import IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IPCMNI, IPCMNI_SHIFT
from mqsentry.abi.linux.msgqueue import (
    MSG_COPY,
    MSG_EXCEPT,
    MSG_INFO,
    MSG_STAT,
    MSG_STAT_ANY,
    MSGINFO,
    MSQID64_DS,
    MTYPE,
)
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.msgqueue import SEARCH_ANY, SEARCH_EQUAL, SEARCH_LESSEQUAL, SEARCH_NOTEQUAL
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux import ids
from mqsentry.syscalls.linux.args import int32, int64, uint64
from mqsentry.syscalls.linux.table import Syscall

if TYPE_CHECKING:
    from mqsentry.kernel.ktime import Clock
    from mqsentry.kernel.msgqueue.queue import Queue

LONG_MAX: Final = (1 << 63) - 1
#: LONG_MIN as an unsigned register value.
_LONG_MIN_BITS: Final = 1 << 63
_mtype_of: Final = MTYPE.unpack_from
_MSQID_SIZE = MSQID64_DS.size
_I_UID = MSQID64_DS.index("perm.uid")
_I_GID = MSQID64_DS.index("perm.gid")
_I_MODE = MSQID64_DS.index("perm.mode")
_I_QBYTES = MSQID64_DS.index("qbytes")
#: MSG_COPY's scratch copy-in is probed in chunks so a huge msgmax never means a huge allocation.
_PROBE_CHUNK: Final = 1 << 16
_IDX_MASK: Final = IPCMNI - 1
_SEQ_SHIFT: Final = IPCMNI_SHIFT


def msgget(t: Task, key: int, msgflg: int, *_: int) -> int:
    return t.ipc_ns.msgqueues.get(t, int32(key), int32(msgflg))


# msgsnd and msgrcv take the unused registers as defaulted parameters instead of the usual ``*_``:
# the syscall entry always passes six, and a varargs call builds a tuple (compiled, it also takes
# mypyc's slow argument parser).
def msgsnd(t: Task, msqid: int, msgp: int, msgsz: int, msgflg: int, _a4: int = 0, _a5: int = 0) -> int:
    return do_msgsnd(t, msqid, msgp, msgsz, msgflg, _mtype_of, 8, None)


def do_msgsnd(t: Task, msqid: int, msgp: int, msgsz: int, msgflg: int, mtype_of: Callable[[bytes], tuple[int]],
              hdr: int, to_native: Callable[[bytes, int], bytes] | None) -> int:
    """``do_msgsnd`` for a ``struct msgbuf`` whose ``long mtype`` is ``hdr`` bytes (``mtype_of``
    reads it); ``to_native`` rebuilds a 32-bit guest's message with the sentry's 8-byte header."""
    msqid &= 0xFFFF_FFFF  # int msqid: only its sign matters below, and bit 31 is the sign
    msgsz &= 0xFFFF_FFFF_FFFF_FFFF
    ns = t.ipc_ns
    # msgsz > msgmax also covers (long)msgsz < 0: msgmax is at most INT_MAX.
    if msgsz > ns.msg_ctlmax or msqid & 0x8000_0000:
        t.copy_in(msgp, hdr)  # get_user(mtype) faults first of all
        raise SysError(EINVAL)
    try:
        blob = t.copy_in(msgp, hdr + msgsz)  # mtype and text in one read
    except SysError:
        # Find out which of Linux's separate reads fails, in its order.
        if mtype_of(t.copy_in(msgp, hdr))[0] < 1:
            raise SysError(EINVAL) from None
        raise
    mtype = mtype_of(blob)[0]
    if mtype < 1:
        raise SysError(EINVAL)
    if to_native is not None:
        blob = to_native(blob, mtype)
    q = ns.msgqueues.by_idx.get(msqid & _IDX_MASK)  # ipc_obtain_object_check, inlined
    if q is None or q.seq != msqid >> _SEQ_SHIFT:
        raise SysError(EINVAL)
    # Queue.send, inlined: the caller's ids and clock are read here, from the concrete Task.
    if not q.send_fast(t.creds.euid, t.tg.tgid, t.kernel.clock, blob, mtype):
        q.send_slow(t, blob, mtype, msgflg & IPC_NOWAIT)
    return 0


def msgrcv(t: Task, msqid: int, msgp: int, msgsz: int, msgtyp: int, msgflg: int, _a5: int = 0) -> int:
    blob, n = do_msgrcv(t, msqid, msgp, msgsz, msgtyp, msgflg)
    if n < len(blob) - 8:
        blob = blob[:8 + n]
    try:
        t.copy_out(msgp, blob)
    except SysError:
        # do_msg_fill writes mtype, then the text; the message is lost either way (already taken).
        t.copy_out(msgp, blob[:8])
        raise
    return n


def do_msgrcv(t: Task, msqid: int, msgp: int, msgsz: int, msgtyp: int, msgflg: int) -> tuple[bytes, int]:
    """``do_msgrcv`` up to the copy-out: (the message with its 8-byte header, the text bytes to copy).
    ``msgsz`` and ``msgtyp`` are 64-bit ``long`` register values (a 32-bit caller sign-extends)."""
    msqid &= 0xFFFF_FFFF
    bufsz = msgsz & 0xFFFF_FFFF_FFFF_FFFF
    if msqid & 0x8000_0000 or bufsz >> 63:  # msqid < 0 || (long)bufsz < 0
        raise SysError(EINVAL)
    # msgflg is an int: the flags tested are all in its low bits, so the raw register serves.
    ns = t.ipc_ns
    if msgflg & MSG_COPY:
        if msgflg & MSG_EXCEPT or not msgflg & IPC_NOWAIT:
            raise SysError(EINVAL)
        copy_cap = min(bufsz, ns.msg_ctlmax)
        _probe_readable(t, msgp, copy_cap)  # prepare_copy loads the user buffer before the lookup
        blob = ns.msgqueues.ids.obtain_check(msqid).copy(t, int64(msgtyp), bufsz, msgflg, copy_cap)
    else:
        msgtyp &= 0xFFFF_FFFF_FFFF_FFFF
        if not msgtyp:
            mode = SEARCH_ANY
        elif msgtyp >> 63:  # negative: the lowest type <= |msgtyp|; -LONG_MIN is LONG_MAX
            mode = SEARCH_LESSEQUAL
            msgtyp = LONG_MAX if msgtyp == _LONG_MIN_BITS else (1 << 64) - msgtyp
        else:
            mode = SEARCH_NOTEQUAL if msgflg & MSG_EXCEPT else SEARCH_EQUAL
        q = ns.msgqueues.by_idx.get(msqid & _IDX_MASK)
        if q is None or q.seq != msqid >> _SEQ_SHIFT:
            raise SysError(EINVAL)
        # Queue.receive, inlined as Queue.send is in do_msgsnd.
        rblob = q.receive_fast(t.creds.euid, t.tg.tgid, t.kernel.clock, bufsz, msgtyp, mode, msgflg)
        blob = rblob if rblob is not None else q.receive_slow(t, bufsz, msgtyp, mode, msgflg)
        undo = t.undo
        if undo is not None:
            # A platform task (kernel/platform): if the reply cannot be delivered because the
            # target died, the platform runs this so the message is not lost.
            undo.append(_undo_receive(q, blob, t.kernel.clock))
    n = len(blob) - 8
    if bufsz < n:
        n = bufsz
    return blob, n


def _undo_receive(q: Queue, blob: bytes, clock: Clock) -> Callable[[], None]:
    """The undo of one msgrcv: ``blob`` (the whole message, untruncated) goes back to ``q``."""
    return lambda: q.unreceive(blob, clock.now_s())


def _probe_readable(t: Task, addr: int, n: int) -> None:
    off = 0
    while off < n:
        step = min(_PROBE_CHUNK, n - off)
        t.copy_in(addr + off, step)
        off += step


def do_msgctl(t: Task, msqid: int, cmd: int, buf: int, info_out: Callable[[tuple[int, ...]], bytes],
              stat_out: Callable[[tuple[int, ...]], bytes], set_in: Callable[[Task, int], tuple[int, int, int, int]]
              ) -> int:
    """``ksys_msgctl`` once the ABI has parsed its version out of ``cmd``: Linux's checks and command
    dispatch in one place for every ABI. ``msqid`` and ``cmd`` are C ints, ``buf`` the user address.
    ``info_out`` packs a ``struct msginfo``, ``stat_out`` a ``struct msqid_ds`` from the registry's
    fields (in ``MSQID64_DS`` order), and ``set_in`` reads IPC_SET's ``(uid, gid, mode, qbytes)``."""
    if msqid < 0 or cmd < 0:
        raise SysError(EINVAL)
    reg = t.ipc_ns.msgqueues
    if cmd == IPC_INFO or cmd == MSG_INFO:
        ret, fields = reg.info(cmd)
        t.copy_out(buf, info_out(fields))
        return ret
    if cmd == IPC_STAT or cmd == MSG_STAT or cmd == MSG_STAT_ANY:
        ret, fields = reg.stat(t, msqid, cmd)
        t.copy_out(buf, stat_out(ids.msqid_out(t, fields)))
        return ret
    if cmd == IPC_SET:
        uid, gid, mode, qbytes = set_in(t, buf)
        uid, gid = ids.perm_in(t, uid, gid)  # an unmapped id is NO_ID: EINVAL after the EPERM checks
        reg.set(t, msqid, uid, gid, mode, qbytes)
        return 0
    if cmd == IPC_RMID:
        reg.remove(t, msqid)
        return 0
    raise SysError(EINVAL)


def _msginfo_out(fields: tuple[int, ...]) -> bytes:
    return MSGINFO.pack(*fields)


def _msqid64_out(fields: tuple[int, ...]) -> bytes:
    return MSQID64_DS.pack(*fields)


def _msqid64_in(t: Task, buf: int) -> tuple[int, int, int, int]:
    ds = MSQID64_DS.unpack(t.copy_in(buf, _MSQID_SIZE))
    return ds[_I_UID], ds[_I_GID], ds[_I_MODE], ds[_I_QBYTES]


def msgctl(t: Task, msqid: int, cmd: int, buf: int, *_: int) -> int:
    # cmd | IPC_64 falls through to EINVAL: the native msgctl never strips it.
    return do_msgctl(t, int32(msqid), int32(cmd), uint64(buf), _msginfo_out, _msqid64_out, _msqid64_in)


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("msgget", msgget),
    Syscall("msgsnd", msgsnd),
    Syscall("msgrcv", msgrcv, "full", "MSG_COPY is always available (CONFIG_CHECKPOINT_RESTORE=y)"),
    Syscall("msgctl", msgctl),
)}

__all__ = ["SYSCALLS", "msgget", "msgsnd", "msgrcv", "msgctl", "do_msgsnd", "do_msgrcv", "do_msgctl"]
