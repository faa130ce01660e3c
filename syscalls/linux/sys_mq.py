"""POSIX message-queue syscalls: mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify, mq_getsetattr.

Linux counterpart: ipc/mqueue.c (``SYSCALL_DEFINE``s, ``do_mq_open``, ``do_mq_timedsend``,
``do_mq_timedreceive``, ``do_mq_notify``, ``do_mq_getsetattr``, ``prepare_timeout``).
gVisor counterpart: pkg/sentry/syscalls/linux/sys_mq.go (``MqOpen``, ``MqUnlink``; the other four are
ENOSYS in gVisor HEAD and come from the unmerged PR 6458, rewritten here to follow Linux).

Every check is in Linux's order (ipc/mqueue.c; docs/porting-map.md names the functions). The send and
receive handlers are the hot path: precompiled struct codecs, one fd-table lookup, and the queue
engine (mqsentry.kernel.mq.queue) does the rest under one lock acquisition.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from mqsentry.abi.linux.errno import EBADF, EINVAL, EMSGSIZE, ENAMETOOLONG, ENOENT
from mqsentry.abi.linux.file import O_ACCMODE, O_NONBLOCK, PATH_MAX
from mqsentry.abi.linux.mqueue import MQ_ATTR, MQ_PRIO_MAX, NOTIFY_COOKIE_LEN
from mqsentry.abi.linux.signal import NSIG, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, SIGEVENT
from mqsentry.abi.linux.socket import AF_NETLINK
from mqsentry.abi.linux.time import TIMESPEC
from mqsentry.fs.mqfs import QueueFD, decode_name
from mqsentry.fs.vfs.context import current_umask, fd_table
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.mq.notify import Notification
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux.args import int32, mode_t
from mqsentry.syscalls.linux.sys_socket import socket_of
from mqsentry.syscalls.linux.table import Syscall

if TYPE_CHECKING:
    from mqsentry.kernel.mq.queue import Queue


_TS: Callable[[bytes], tuple[int, int]] = TIMESPEC.codec.unpack
_MQ_ATTR_UNPACK = MQ_ATTR.codec.unpack
_MQ_ATTR_PACK = MQ_ATTR.codec.pack
_SIGEVENT_UNPACK = SIGEVENT.codec.unpack
_U32: Final = struct.Struct("<I").pack
_PRIO0: Final = _U32(0)  # the priority nearly every program uses: skip the pack
_MASK32: Final = 0xFFFF_FFFF
_MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF
_NONBLOCK_INV: Final = ~O_NONBLOCK


def _deadline(t: Task, addr: int) -> int:
    """``prepare_timeout``: copy in the absolute CLOCK_REALTIME timespec; EFAULT/EINVAL at entry."""
    sec, nsec = _TS(t.copy_in(addr, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SysError(EINVAL)
    return sec * 1_000_000_000 + nsec


def _queue_fd(t: Task, mqdes: int) -> QueueFD:
    """fdget + the ``mqueue_file_operations`` check: EBADF for both.

    The fd is an ``int``: only the low 32 bits of the register count. Looking those up unsigned is
    the same as signed, because a table never holds a negative fd or one at or above NR_OPEN.
    ``FDTable.files`` holds filled slots only, so None (no such fd) fails the class check too.
    """
    desc = t.fd_table.files.get(mqdes & _MASK32)
    if type(desc) is not QueueFD and not isinstance(desc, QueueFD):
        raise SysError(EBADF)
    return desc


def _name(t: Task, addr: int) -> str:
    """``getname``: EFAULT, "" -> ENOENT, no NUL within PATH_MAX bytes -> ENAMETOOLONG."""
    raw = t.copy_in_string(addr, PATH_MAX)
    if raw is None:
        raise SysError(ENAMETOOLONG)
    if not raw:
        raise SysError(ENOENT)
    return decode_name(raw)


# -- mq_open / mq_unlink ---------------------------------------------------------------------------------
def mq_open(t: Task, name: int, oflag: int, mode: int, attr: int, *_: int) -> int:
    qattr = None
    if attr:
        _f, maxmsg, msgsize, _cur = _MQ_ATTR_UNPACK(t.copy_in(attr, MQ_ATTR.size))
        qattr = (maxmsg, msgsize)
    return do_mq_open(t, name, int32(oflag), mode_t(mode), qattr)


def do_mq_open(t: Task, name: int, flags: int, umode: int, qattr: tuple[int, int] | None) -> int:
    """``do_mq_open`` after the attributes are copied in: ``qattr`` is (mq_maxmsg, mq_msgsize)."""
    qname = _name(t, name)
    table = fd_table(t)
    fd = table.reserve(t, cloexec=True)
    try:
        desc = t.ipc_ns.posix_queues.open_queue(t, qname, flags, umode, qattr, current_umask(t))
    except BaseException:
        table.unreserve(fd)
        raise
    table.fill(fd, desc)
    desc.decref()
    return fd


def mq_unlink(t: Task, name: int, *_: int) -> int:
    qname = _name(t, name)
    t.ipc_ns.posix_queues.unlink_queue(t, qname)
    return 0


# -- send / receive (hot paths) --------------------------------------------------------------------------
# These two take the sixth register as a defaulted parameter instead of the usual ``*_``: the syscall
# entry always passes exactly six, and CPython sets up a varargs frame measurably slower.
def mq_timedsend(t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int, abs_timeout: int,
                 _a5: int = 0) -> int:
    return do_mq_timedsend(t, mqdes, msg_ptr, msg_len, msg_prio,
                           _deadline(t, abs_timeout) if abs_timeout else None)


def do_mq_timedsend(t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int, deadline: int | None) -> int:
    """``do_mq_timedsend`` after ``prepare_timeout``: ``deadline`` in CLOCK_REALTIME ns, or None."""
    prio = msg_prio & _MASK32
    if prio >= MQ_PRIO_MAX:
        raise SysError(EINVAL)
    desc = t.fd_table.files.get(mqdes & _MASK32)  # _queue_fd, inlined
    if type(desc) is not QueueFD and not isinstance(desc, QueueFD):
        raise SysError(EBADF)
    flags = desc.flags
    if not 0 < flags & O_ACCMODE < 3:  # FMODE_WRITE: O_WRONLY or O_RDWR
        raise SysError(EBADF)
    q = desc.queue
    n = msg_len & _MASK64
    if n > q.msgsize:
        raise SysError(EMSGSIZE)
    data = t.copy_in(msg_ptr, n)
    w = q.send(t, data, prio, flags & O_NONBLOCK)
    if w is not None:
        q.wait_send(t, w, deadline)
    return 0


def mq_timedreceive(t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int, abs_timeout: int,
                    _a5: int = 0) -> int:
    return do_mq_timedreceive(t, mqdes, msg_ptr, msg_len, msg_prio,
                              _deadline(t, abs_timeout) if abs_timeout else None)


def do_mq_timedreceive(t: Task, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int,
                       deadline: int | None, pack_prio: Callable[[int], bytes] = _U32) -> int:
    """``do_mq_timedreceive`` after ``prepare_timeout`` (see :func:`do_mq_timedsend`); ``pack_prio``
    writes the ``unsigned int`` priority in the guest's byte order."""
    desc = t.fd_table.files.get(mqdes & _MASK32)  # _queue_fd, inlined
    if type(desc) is not QueueFD and not isinstance(desc, QueueFD):
        raise SysError(EBADF)
    flags = desc.flags
    if flags & 1:  # FMODE_READ: O_RDONLY or O_RDWR (accmode 1 and 3 lack it)
        raise SysError(EBADF)
    q = desc.queue
    if msg_len & _MASK64 < q.msgsize:
        raise SysError(EMSGSIZE)
    r = q.receive(t, flags & O_NONBLOCK)
    if r.__class__ is tuple:
        data, prio = r
    else:
        data, prio = q.wait_receive(t, r, deadline)  # type: ignore[arg-type]
    undo = t.undo
    if undo is not None:
        # A platform's task: if its reply never reaches the target, the message goes back.
        undo.append(_undo_receive(q, data, prio))
    # The message is already dequeued: a fault below loses it, as in Linux.
    if msg_prio:
        t.copy_out(msg_prio, pack_prio(prio) if prio else _PRIO0)  # zero reads the same either way
    if data:
        t.copy_out(msg_ptr, data)
    return len(data)


def _undo_receive(q: Queue, data: bytes, prio: int) -> Callable[[], None]:
    """The undo of one mq_timedreceive (binds the message at the time it was taken)."""
    return lambda: q.unreceive(data, prio)


# -- mq_notify / mq_getsetattr ---------------------------------------------------------------------------
def mq_notify(t: Task, mqdes: int, notification: int, *_: int) -> int:
    ev = None
    if notification:
        value, signo, notify, _tid, _attr = _SIGEVENT_UNPACK(t.copy_in(notification, SIGEVENT.size))
        ev = (value, signo, notify)
    return do_mq_notify(t, mqdes, ev)


def do_mq_notify(t: Task, mqdes: int, ev: tuple[int, int, int] | None) -> int:
    """``do_mq_notify`` after the sigevent is copied in: ``ev`` is (sigev_value, sigev_signo,
    sigev_notify) with the value widened to a pointer, or None to unregister."""
    n = None
    sock = None
    if ev is not None:
        value, signo, notify = ev
        if notify not in (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD):
            raise SysError(EINVAL)
        # valid_signal takes an unsigned long: a negative signo is invalid too.
        if notify == SIGEV_SIGNAL and not 0 <= signo <= NSIG:
            raise SysError(EINVAL)
        cookie = b""
        if notify == SIGEV_THREAD:
            cookie = t.copy_in(value, NOTIFY_COOKIE_LEN)
            sock = socket_of(t, signo)  # EBADF, ENOTSOCK
            if sock.sock_family != AF_NETLINK:
                raise SysError(EINVAL)  # netlink_getsockbyfilp on another family
            sock.incref()  # netlink_getsockbyfilp's sock_hold; dropped when the cookie is sent
        # notify_user_ns: si_uid is later shown in the registering task's user namespace.
        n = Notification(t.tg.tgid, notify, signo if notify == SIGEV_SIGNAL else 0,
                         value if notify == SIGEV_SIGNAL else 0, sock, cookie, t.creds.user_ns)
    try:
        desc = _queue_fd(t, mqdes)
        q = desc.queue
        if n is None:
            q.remove_notification(t.tg.tgid)
        else:
            q.register_notification(n)
            sock = None  # the registration owns the reference now
    finally:
        if sock is not None:
            sock.decref()
    return 0


def mq_getsetattr(t: Task, mqdes: int, mqstat: int, omqstat: int, *_: int) -> int:
    new_flags = None
    if mqstat:
        new_flags = _MQ_ATTR_UNPACK(t.copy_in(mqstat, MQ_ATTR.size))[0]
        if new_flags & _NONBLOCK_INV:
            raise SysError(EINVAL)
    old = do_mq_getsetattr(t, mqdes, new_flags)
    if omqstat:
        t.copy_out(omqstat, _MQ_ATTR_PACK(*old))
    return 0


def do_mq_getsetattr(t: Task, mqdes: int, new_flags: int | None) -> tuple[int, int, int, int]:
    """``do_mq_getsetattr`` after the flags check: the old (mq_flags, mq_maxmsg, mq_msgsize,
    mq_curmsgs); ``new_flags`` is O_NONBLOCK or 0 to set, None to only read."""
    desc = _queue_fd(t, mqdes)
    q = desc.queue
    with q.mu:
        maxmsg, msgsize, curmsgs = q.maxmsg, q.msgsize, q.curmsgs
        with desc.mu:
            old_flags = desc.flags & O_NONBLOCK
            if new_flags is not None:
                desc.flags = (desc.flags | O_NONBLOCK) if new_flags & O_NONBLOCK else (desc.flags & _NONBLOCK_INV)
        if new_flags is not None:
            q.touch_attr()
    return old_flags, maxmsg, msgsize, curmsgs


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("mq_open", mq_open),
    Syscall("mq_unlink", mq_unlink),
    Syscall("mq_timedsend", mq_timedsend),
    Syscall("mq_timedreceive", mq_timedreceive),
    Syscall("mq_notify", mq_notify, "partial", "SIGEV_THREAD needs a sentry AF_NETLINK socket; no exec, so "
            "self_exec_id never suppresses a signal"),
    Syscall("mq_getsetattr", mq_getsetattr),
)}

__all__ = ["SYSCALLS", "do_mq_open", "do_mq_timedsend", "do_mq_timedreceive", "do_mq_notify",
           "do_mq_getsetattr"]
