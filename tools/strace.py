"""An strace-like formatter for sentry syscalls, usable as ``Kernel.tracer``.

Linux counterpart: none in the kernel; this mimics the output of strace(1), which decodes syscalls
from user space through ptrace (its ipc_msg.c, mq.c and signal.c printers). gVisor counterpart:
pkg/sentry/strace (strace.go and linux64.go: per-syscall argument formats behind ``--strace``).

One line per syscall: the task id, the name from the architecture's table, the decoded arguments
and the result or errno name, e.g. ``[pid 2] msgrcv(0, 0x10000000, 64, 1, 0) = 5`` or
``... = -1 ENOMSG (No message of desired type)``. With ``structs=True`` the buffers a syscall reads
or fills are decoded as strace does (``{1, "ping"}``, ``{mq_maxmsg=8, ...}``, ``[9]``).

Guest memory is read only through the task's ``mm.read`` inside ``try``: a bad pointer is printed
as an address, never raised. The tracer runs after the syscall returned, so output buffers already
hold the results; input buffers are unchanged by the calls decoded here.
"""

from __future__ import annotations

import struct
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from mqsentry.abi.linux.errno import ERRNO_NAMES
from mqsentry.abi.linux.file import (
    O_ACCMODE,
    O_APPEND,
    O_ASYNC,
    O_CLOEXEC,
    O_CREAT,
    O_DSYNC,
    O_EXCL,
    O_NOATIME,
    O_NOCTTY,
    O_NONBLOCK,
    O_PATH,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
)
from mqsentry.abi.linux.ipc import (
    IPC_64,
    IPC_CREAT,
    IPC_EXCL,
    IPC_INFO,
    IPC_NOWAIT,
    IPC_PRIVATE,
    IPC_RMID,
    IPC_SET,
    IPC_STAT,
)
from mqsentry.abi.linux.mqueue import MQ_ATTR, NAME_MAX
from mqsentry.abi.linux.msgqueue import (
    MSG_COPY,
    MSG_EXCEPT,
    MSG_INFO,
    MSG_NOERROR,
    MSG_STAT,
    MSG_STAT_ANY,
    MSGINFO,
    MSQID64_DS,
)
from mqsentry.abi.linux.sched import CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWUSER
from mqsentry.abi.linux.signal import (
    SA_NOCLDSTOP,
    SA_NOCLDWAIT,
    SA_NODEFER,
    SA_ONSTACK,
    SA_RESETHAND,
    SA_RESTART,
    SA_RESTORER,
    SA_SIGINFO,
    SI_ASYNCIO,
    SI_KERNEL,
    SI_MESGQ,
    SI_QUEUE,
    SI_SIGIO,
    SI_TIMER,
    SI_TKILL,
    SI_USER,
    SIG_BLOCK,
    SIG_SETMASK,
    SIG_UNBLOCK,
    SIGACTION,
    SIGEV_NONE,
    SIGEV_SIGNAL,
    SIGEV_THREAD,
    SIGEV_THREAD_ID,
    SIGEVENT,
    SIGNAL_NAMES,
)
from mqsentry.abi.linux.time import TIMESPEC

if TYPE_CHECKING:
    from mqsentry.kernel.kernel import Kernel
    from mqsentry.kernel.signals import SigInfo
    from mqsentry.kernel.task import Task

_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_MTYPE = struct.Struct("<q")
_UINT = struct.Struct("<I")
_U64 = struct.Struct("<Q")

#: errno -> message (glibc wording on Linux; checked in so output does not depend on the host).
ERRNO_MESSAGES: dict[int, str] = {
    1: 'Operation not permitted',
    2: 'No such file or directory',
    3: 'No such process',
    4: 'Interrupted system call',
    5: 'Input/output error',
    6: 'No such device or address',
    7: 'Argument list too long',
    8: 'Exec format error',
    9: 'Bad file descriptor',
    10: 'No child processes',
    11: 'Resource temporarily unavailable',
    12: 'Cannot allocate memory',
    13: 'Permission denied',
    14: 'Bad address',
    15: 'Block device required',
    16: 'Device or resource busy',
    17: 'File exists',
    18: 'Invalid cross-device link',
    19: 'No such device',
    20: 'Not a directory',
    21: 'Is a directory',
    22: 'Invalid argument',
    23: 'Too many open files in system',
    24: 'Too many open files',
    25: 'Inappropriate ioctl for device',
    26: 'Text file busy',
    27: 'File too large',
    28: 'No space left on device',
    29: 'Illegal seek',
    30: 'Read-only file system',
    31: 'Too many links',
    32: 'Broken pipe',
    33: 'Numerical argument out of domain',
    34: 'Numerical result out of range',
    35: 'Resource deadlock avoided',
    36: 'File name too long',
    37: 'No locks available',
    38: 'Function not implemented',
    39: 'Directory not empty',
    40: 'Too many levels of symbolic links',
    42: 'No message of desired type',
    43: 'Identifier removed',
    44: 'Channel number out of range',
    45: 'Level 2 not synchronized',
    46: 'Level 3 halted',
    47: 'Level 3 reset',
    48: 'Link number out of range',
    49: 'Protocol driver not attached',
    50: 'No CSI structure available',
    51: 'Level 2 halted',
    52: 'Invalid exchange',
    53: 'Invalid request descriptor',
    54: 'Exchange full',
    55: 'No anode',
    56: 'Invalid request code',
    57: 'Invalid slot',
    59: 'Bad font file format',
    60: 'Device not a stream',
    61: 'No data available',
    62: 'Timer expired',
    63: 'Out of streams resources',
    64: 'Machine is not on the network',
    65: 'Package not installed',
    66: 'Object is remote',
    67: 'Link has been severed',
    68: 'Advertise error',
    69: 'Srmount error',
    70: 'Communication error on send',
    71: 'Protocol error',
    72: 'Multihop attempted',
    73: 'RFS specific error',
    74: 'Bad message',
    75: 'Value too large for defined data type',
    76: 'Name not unique on network',
    77: 'File descriptor in bad state',
    78: 'Remote address changed',
    79: 'Can not access a needed shared library',
    80: 'Accessing a corrupted shared library',
    81: '.lib section in a.out corrupted',
    82: 'Attempting to link in too many shared libraries',
    83: 'Cannot exec a shared library directly',
    84: 'Invalid or incomplete multibyte or wide character',
    85: 'Interrupted system call should be restarted',
    86: 'Streams pipe error',
    87: 'Too many users',
    88: 'Socket operation on non-socket',
    89: 'Destination address required',
    90: 'Message too long',
    91: 'Protocol wrong type for socket',
    92: 'Protocol not available',
    93: 'Protocol not supported',
    94: 'Socket type not supported',
    95: 'Operation not supported',
    96: 'Protocol family not supported',
    97: 'Address family not supported by protocol',
    98: 'Address already in use',
    99: 'Cannot assign requested address',
    100: 'Network is down',
    101: 'Network is unreachable',
    102: 'Network dropped connection on reset',
    103: 'Software caused connection abort',
    104: 'Connection reset by peer',
    105: 'No buffer space available',
    106: 'Transport endpoint is already connected',
    107: 'Transport endpoint is not connected',
    108: 'Cannot send after transport endpoint shutdown',
    109: 'Too many references: cannot splice',
    110: 'Connection timed out',
    111: 'Connection refused',
    112: 'Host is down',
    113: 'No route to host',
    114: 'Operation already in progress',
    115: 'Operation now in progress',
    116: 'Stale file handle',
    117: 'Structure needs cleaning',
    118: 'Not a XENIX named type file',
    119: 'No XENIX semaphores available',
    120: 'Is a named type file',
    121: 'Remote I/O error',
    122: 'Disk quota exceeded',
    123: 'No medium found',
    124: 'Wrong medium type',
    125: 'Operation canceled',
    126: 'Required key not available',
    127: 'Key has expired',
    128: 'Key has been revoked',
    129: 'Key was rejected by service',
    130: 'Owner died',
    131: 'State not recoverable',
    132: 'Operation not possible due to RF-kill',
}


def errno_text(err: int) -> str:
    """``ENOMSG (No message of desired type)`` for a positive errno value."""
    name = ERRNO_NAMES.get(err, f"E{err}")
    msg = ERRNO_MESSAGES.get(err)
    return f"{name} ({msg})" if msg else name


# -- scalar formatting ------------------------------------------------------------------------------------

def _s32(v: int) -> int:
    return ((v & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000


def _s64(v: int) -> int:
    return ((v & _MASK64) ^ 0x8000_0000_0000_0000) - 0x8000_0000_0000_0000


def ptr(v: int) -> str:
    """A pointer: ``NULL`` or hex."""
    v &= _MASK64
    return "NULL" if v == 0 else f"{v:#x}"


def flags(value: int, table: Iterable[tuple[int, str]], octal_rest: bool = False) -> str:
    """``A|B|0600``: named bits first, then the rest in octal (permission bits) or hex."""
    parts = []
    for bit, name in table:
        if value & bit == bit and bit:
            parts.append(name)
            value &= ~bit
    if value or not parts:
        parts.append(f"{value:#o}" if octal_rest and value else f"{value:#x}" if value else "0")
    return "|".join(parts)


def mode(v: int) -> str:
    """A permission mode in octal, as strace prints it (``0600``)."""
    return f"0{v & 0o7777:o}" if v & 0o7777 else "000"


_IPC_FLAGS = ((IPC_CREAT, "IPC_CREAT"), (IPC_EXCL, "IPC_EXCL"), (IPC_NOWAIT, "IPC_NOWAIT"))
_MSGRCV_FLAGS = ((IPC_NOWAIT, "IPC_NOWAIT"), (MSG_NOERROR, "MSG_NOERROR"), (MSG_EXCEPT, "MSG_EXCEPT"),
                 (MSG_COPY, "MSG_COPY"))
_MSGCTL_CMDS = {IPC_RMID: "IPC_RMID", IPC_SET: "IPC_SET", IPC_STAT: "IPC_STAT", IPC_INFO: "IPC_INFO",
                MSG_STAT: "MSG_STAT", MSG_INFO: "MSG_INFO", MSG_STAT_ANY: "MSG_STAT_ANY"}
_OPEN_FLAGS = ((O_CREAT, "O_CREAT"), (O_EXCL, "O_EXCL"), (O_NOCTTY, "O_NOCTTY"), (O_TRUNC, "O_TRUNC"),
               (O_APPEND, "O_APPEND"), (O_NONBLOCK, "O_NONBLOCK"), (O_DSYNC, "O_DSYNC"), (O_ASYNC, "O_ASYNC"),
               (O_NOATIME, "O_NOATIME"), (O_CLOEXEC, "O_CLOEXEC"), (O_PATH, "O_PATH"))
_ACCMODES = {O_RDONLY: "O_RDONLY", O_WRONLY: "O_WRONLY", O_RDWR: "O_RDWR"}
_SA_FLAGS = ((SA_NOCLDSTOP, "SA_NOCLDSTOP"), (SA_NOCLDWAIT, "SA_NOCLDWAIT"), (SA_SIGINFO, "SA_SIGINFO"),
             (SA_RESTORER, "SA_RESTORER"), (SA_ONSTACK, "SA_ONSTACK"), (SA_RESTART, "SA_RESTART"),
             (SA_NODEFER, "SA_NODEFER"), (SA_RESETHAND, "SA_RESETHAND"))
_SIGEV = {SIGEV_SIGNAL: "SIGEV_SIGNAL", SIGEV_NONE: "SIGEV_NONE", SIGEV_THREAD: "SIGEV_THREAD",
          SIGEV_THREAD_ID: "SIGEV_THREAD_ID"}
_SI_CODES = {SI_USER: "SI_USER", SI_KERNEL: "SI_KERNEL", SI_QUEUE: "SI_QUEUE", SI_TIMER: "SI_TIMER",
             SI_MESGQ: "SI_MESGQ", SI_ASYNCIO: "SI_ASYNCIO", SI_SIGIO: "SI_SIGIO", SI_TKILL: "SI_TKILL"}
_HOW = {SIG_BLOCK: "SIG_BLOCK", SIG_UNBLOCK: "SIG_UNBLOCK", SIG_SETMASK: "SIG_SETMASK"}
_CLONE_FLAGS = ((CLONE_NEWIPC, "CLONE_NEWIPC"), (CLONE_NEWNS, "CLONE_NEWNS"), (CLONE_NEWUSER, "CLONE_NEWUSER"))


def open_flags(v: int) -> str:
    """``O_RDWR|O_CREAT|O_NONBLOCK``: the access mode first, as strace prints it."""
    v &= 0xFFFF_FFFF
    acc = _ACCMODES.get(v & O_ACCMODE, f"{v & O_ACCMODE:#x}")
    rest = v & ~O_ACCMODE
    return acc if not rest else acc + "|" + flags(rest, _OPEN_FLAGS)


def ipc_flags(v: int) -> str:
    """msgget/msgsnd flags: ``IPC_CREAT|IPC_EXCL|0600``."""
    v &= 0xFFFF_FFFF
    perms = v & 0o777
    named = flags(v & ~0o777, _IPC_FLAGS) if v & ~0o777 else ""
    if not perms:
        return named or "0"
    return f"{named}|0{perms:o}" if named else f"0{perms:o}"


def msgctl_cmd(v: int) -> str:
    v = _s32(v)
    prefix = ""
    if v >= 0 and v & IPC_64:
        prefix, v = "IPC_64|", v & ~IPC_64
    return prefix + _MSGCTL_CMDS.get(v, f"{v:#x}" if v >= 0 else str(v))


def signame(sig: int) -> str:
    sig = _s32(sig)
    if sig in SIGNAL_NAMES:
        return SIGNAL_NAMES[sig]
    if sig == 32:
        return "SIGRTMIN"
    if 32 < sig <= 64:
        return f"SIGRT_{sig - 32}"
    return str(sig)


def sigset(mask: int) -> str:
    """``[USR1 USR2]`` (strace drops the SIG prefix inside sets)."""
    names = [signame(i + 1).removeprefix("SIG") for i in range(64) if mask >> i & 1]
    return "[" + " ".join(names) + "]"


def quote(data: bytes, limit: int) -> str:
    """A C string literal of ``data`` (at most ``limit`` bytes, then ``...``)."""
    out = []
    for b in data[:limit]:
        if b == 0x22 or b == 0x5C:
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0:
            out.append("\\0")
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"' + ("..." if len(data) > limit else "")


def siginfo_text(info: SigInfo) -> str:
    """``{si_signo=SIGUSR1, si_code=SI_MESGQ, si_pid=2, si_uid=0, si_value={int=42, ptr=0x2a}}``."""
    code = _SI_CODES.get(info.code, str(info.code))
    val = info.value & _MASK64
    return (f"{{si_signo={signame(info.signo)}, si_code={code}, si_pid={info.pid}, si_uid={info.uid}, "
            f"si_value={{int={_s32(val)}, ptr={val:#x}}}}}")


# -- per-syscall argument decoding ---------------------------------------------------------------------------

class _Call:
    """One syscall being printed: the raw arguments, the result (None on entry) and memory access."""

    __slots__ = ("task", "a", "ret", "structs", "strsize")

    def __init__(self, task: Task, args: tuple[int, ...], ret: int | None, structs: bool, strsize: int) -> None:
        self.task = task
        self.a = args
        self.ret = ret
        self.structs = structs
        self.strsize = strsize

    @property
    def ok(self) -> bool:
        """The call returned successfully (its output buffers are meaningful)."""
        return self.ret is not None and self.ret >= 0

    def peek(self, addr: int, n: int) -> bytes | None:
        """``n`` bytes of guest memory at ``addr``, or None if they are not readable."""
        addr &= _MASK64
        if addr == 0 or n < 0:
            return None
        if n == 0:
            return b""
        try:
            data = self.task.tg.mm.read(addr, n)
        except Exception:
            return None
        return bytes(data) if len(data) == n else None

    def cstring(self, addr: int, maxlen: int) -> str:
        """A NUL-terminated guest string, quoted; the address if it is unreadable."""
        addr &= _MASK64
        if addr == 0:
            return "NULL"
        try:
            s = self.task.copy_in_string(addr, maxlen)
        except Exception:
            return f"{addr:#x}"
        if s is None:  # no NUL within maxlen: show what is there
            data = self.peek(addr, maxlen)
            return quote(data, self.strsize) + "..." if data is not None else f"{addr:#x}"
        return quote(s, max(self.strsize, NAME_MAX))

    def struct(self, addr: int, layout: Any, render: Callable[[tuple[Any, ...]], str]) -> str:
        """Decode a struct at ``addr`` with ``render`` in structs mode; otherwise (or if unreadable)
        the pointer."""
        if not self.structs or addr == 0:
            return ptr(addr)
        data = self.peek(addr, layout.size)
        return ptr(addr) if data is None else render(layout.unpack(data))

    def msgbuf(self, addr: int, size: int) -> str:
        """``{mtype, "text"}`` of a ``struct msgbuf`` holding ``size`` bytes of text."""
        if not self.structs or addr == 0:
            return ptr(addr)
        head = self.peek(addr, 8)
        if head is None:
            return ptr(addr)
        text = self.peek(addr + 8, min(size, self.strsize + 1)) if size > 0 else b""
        t = quote(text, self.strsize) if text is not None else ptr(addr + 8)
        return f"{{{_MTYPE.unpack(head)[0]}, {t}}}"

    def data(self, addr: int, size: int) -> str:
        """A byte buffer as a quoted string in structs mode, else its address."""
        if not self.structs or addr == 0:
            return ptr(addr)
        data = self.peek(addr, min(max(size, 0), self.strsize + 1))
        return quote(data, self.strsize) if data is not None else ptr(addr)


def _mq_attr(v: tuple[Any, ...]) -> str:
    fl, maxmsg, msgsize, cur = v[:4]
    f = flags(fl & _MASK64, ((O_NONBLOCK, "O_NONBLOCK"),)) if fl else "0"
    return f"{{mq_flags={f}, mq_maxmsg={maxmsg}, mq_msgsize={msgsize}, mq_curmsgs={cur}}}"


def _timespec(v: tuple[Any, ...]) -> str:
    return f"{{tv_sec={v[0]}, tv_nsec={v[1]}}}"


def _sigevent(v: tuple[Any, ...]) -> str:
    value, signo, notify, tid, _attribute = v
    how = _SIGEV.get(notify, str(notify))
    out = f"{{sigev_value={{sival_int={_s32(value)}, sival_ptr={value:#x}}}, "
    if notify in (SIGEV_SIGNAL, SIGEV_THREAD_ID):
        out += f"sigev_signo={signame(signo)}, "
    elif notify == SIGEV_THREAD:
        out += f"sigev_signo={signo}, "
    out += f"sigev_notify={how}"
    if notify == SIGEV_THREAD_ID:
        out += f", sigev_notify_thread_id={tid}"
    return out + "}"


def _sigaction(v: tuple[Any, ...]) -> str:
    handler, fl, restorer, mask = v
    h = {0: "SIG_DFL", 1: "SIG_IGN"}.get(handler, f"{handler:#x}")
    out = f"{{sa_handler={h}, sa_mask={sigset(mask)}, sa_flags={flags(fl, _SA_FLAGS)}"
    if fl & SA_RESTORER:
        out += f", sa_restorer={restorer:#x}"
    return out + "}"


_MSQID_FIELDS = {name: i for i, name in enumerate(MSQID64_DS.fields)}


def _msqid_ds(v: tuple[Any, ...]) -> str:
    def g(name: str) -> Any:
        return v[_MSQID_FIELDS[name]]

    return (f"{{msg_perm={{uid={g('perm.uid')}, gid={g('perm.gid')}, mode={mode(g('perm.mode'))}, "
            f"key={g('perm.key')}, cuid={g('perm.cuid')}, cgid={g('perm.cgid')}}}, "
            f"msg_stime={g('stime')}, msg_rtime={g('rtime')}, msg_ctime={g('ctime')}, "
            f"msg_cbytes={g('cbytes')}, msg_qnum={g('qnum')}, msg_qbytes={g('qbytes')}, "
            f"msg_lspid={g('lspid')}, msg_lrpid={g('lrpid')}}}")


def _msginfo(v: tuple[Any, ...]) -> str:
    return "{" + ", ".join(f"{name}={val}" for name, val in zip(MSGINFO.fields, v)) + "}"


#: A decoder returns the argument strings and the index of the first output argument (printed only
#: when the call has finished: strace's "<unfinished ...>" / "<... resumed>" split).
Decoder = Callable[[_Call], tuple[list[str], int]]


def _msgget(c: _Call) -> tuple[list[str], int]:
    key = _s32(c.a[0])
    return ["IPC_PRIVATE" if key == IPC_PRIVATE else str(key), ipc_flags(c.a[1])], 2


def _msgsnd(c: _Call) -> tuple[list[str], int]:
    size = c.a[2] & _MASK64
    return [str(_s32(c.a[0])), c.msgbuf(c.a[1], size), str(size), ipc_flags(c.a[3])], 4


def _msgrcv(c: _Call) -> tuple[list[str], int]:
    size = c.a[2] & _MASK64
    buf = c.msgbuf(c.a[1], c.ret) if c.ok else ptr(c.a[1])  # type: ignore[arg-type]
    return [str(_s32(c.a[0])), buf, str(size), str(_s64(c.a[3])), flags(c.a[4] & 0xFFFF_FFFF, _MSGRCV_FLAGS)], 1


def _msgctl(c: _Call) -> tuple[list[str], int]:
    cmd = _s32(c.a[1])
    base = cmd & ~IPC_64 if cmd >= 0 else cmd
    buf = ptr(c.a[2])
    out = 3
    if base == IPC_SET:
        buf = c.struct(c.a[2], MSQID64_DS, _msqid_ds)
    elif base in (IPC_STAT, MSG_STAT, MSG_STAT_ANY):
        out = 2
        if c.ok:
            buf = c.struct(c.a[2], MSQID64_DS, _msqid_ds)
    elif base in (IPC_INFO, MSG_INFO):
        out = 2
        if c.ok:
            buf = c.struct(c.a[2], MSGINFO, _msginfo)
    return [str(_s32(c.a[0])), msgctl_cmd(c.a[1]), buf], out


def _mq_open(c: _Call) -> tuple[list[str], int]:
    oflag = c.a[1] & 0xFFFF_FFFF
    args = [c.cstring(c.a[0], NAME_MAX + 1), open_flags(oflag)]
    if oflag & O_CREAT:
        args += [mode(c.a[2]), c.struct(c.a[3], MQ_ATTR, _mq_attr)]
    return args, len(args)


def _mq_unlink(c: _Call) -> tuple[list[str], int]:
    return [c.cstring(c.a[0], NAME_MAX + 1)], 1


def _timeout(c: _Call, addr: int) -> str:
    return c.struct(addr, TIMESPEC, _timespec)


def _mq_timedsend(c: _Call) -> tuple[list[str], int]:
    size = c.a[2] & _MASK64
    return [str(_s32(c.a[0])), c.data(c.a[1], size), str(size), str(c.a[3] & 0xFFFF_FFFF),
            _timeout(c, c.a[4])], 5


def _mq_timedreceive(c: _Call) -> tuple[list[str], int]:
    size = c.a[2] & _MASK64
    buf, prio = ptr(c.a[1]), ptr(c.a[3])
    if c.ok:
        buf = c.data(c.a[1], c.ret)  # type: ignore[arg-type]
        if c.structs and c.a[3]:
            raw = c.peek(c.a[3], 4)
            prio = f"[{_UINT.unpack(raw)[0]}]" if raw is not None else prio
    return [str(_s32(c.a[0])), buf, str(size), prio, _timeout(c, c.a[4])], 1


def _mq_notify(c: _Call) -> tuple[list[str], int]:
    return [str(_s32(c.a[0])), c.struct(c.a[1], SIGEVENT, _sigevent)], 2


def _mq_getsetattr(c: _Call) -> tuple[list[str], int]:
    old = c.struct(c.a[2], MQ_ATTR, _mq_attr) if c.ok else ptr(c.a[2])
    return [str(_s32(c.a[0])), c.struct(c.a[1], MQ_ATTR, _mq_attr), old], 2


def _rt_sigaction(c: _Call) -> tuple[list[str], int]:
    old = c.struct(c.a[2], SIGACTION, _sigaction) if c.ok else ptr(c.a[2])
    return [signame(c.a[0]), c.struct(c.a[1], SIGACTION, _sigaction), old, str(c.a[3] & _MASK64)], 2


def _rt_sigprocmask(c: _Call) -> tuple[list[str], int]:
    how = _HOW.get(_s32(c.a[0]), str(_s32(c.a[0])))

    def setp(addr: int) -> str:
        return c.struct(addr, _U64_LAYOUT, lambda v: sigset(v[0]))

    old = setp(c.a[2]) if c.ok else ptr(c.a[2])
    return [how, setp(c.a[1]), old, str(c.a[3] & _MASK64)], 2


class _U64Layout:
    """A one-field layout for sigset_t reads (duck-types ``Layout.size``/``unpack``)."""

    size = 8
    unpack = staticmethod(_U64.unpack)


_U64_LAYOUT = _U64Layout()


def _ints(*kinds: str) -> Decoder:
    """A decoder for calls whose arguments are plain scalars: ``d`` signed int, ``l`` signed long,
    ``u`` unsigned long, ``p`` pointer, ``s`` signal, ``c`` clone flags."""
    def dec(c: _Call) -> tuple[list[str], int]:
        out = []
        for k, v in zip(kinds, c.a):
            if k == "d":
                out.append(str(_s32(v)))
            elif k == "l":
                out.append(str(_s64(v)))
            elif k == "u":
                out.append(str(v & _MASK64))
            elif k == "s":
                out.append(signame(v))
            elif k == "c":
                out.append(flags(v & _MASK64, _CLONE_FLAGS))
            else:
                out.append(ptr(v))
        return out, len(out)
    return dec


DECODERS: dict[str, Decoder] = {
    "msgget": _msgget,
    "msgsnd": _msgsnd,
    "msgrcv": _msgrcv,
    "msgctl": _msgctl,
    "mq_open": _mq_open,
    "mq_unlink": _mq_unlink,
    "mq_timedsend": _mq_timedsend,
    "mq_timedreceive": _mq_timedreceive,
    "mq_notify": _mq_notify,
    "mq_getsetattr": _mq_getsetattr,
    "rt_sigaction": _rt_sigaction,
    "rt_sigprocmask": _rt_sigprocmask,
    "close": _ints("d"),
    "getpid": _ints(),
    "gettid": _ints(),
    "getppid": _ints(),
    "getuid": _ints(),
    "geteuid": _ints(),
    "kill": _ints("d", "s"),
    "tkill": _ints("d", "s"),
    "tgkill": _ints("d", "d", "s"),
    "exit": _ints("d"),
    "exit_group": _ints("d"),
    "unshare": _ints("c"),
}


def _fallback(c: _Call) -> tuple[list[str], int]:
    # Unknown argument count: print the registers up to the last non-zero one.
    n = len(c.a)
    while n and not c.a[n - 1]:
        n -= 1
    return [ptr(v) if v else "0" for v in c.a[:n]], n


def result_text(ret: int) -> str:
    """``= 5`` or ``= -1 ENOMSG (No message of desired type)``."""
    return f"= {ret}" if ret >= 0 else f"= -1 {errno_text(-ret)}"


# -- the tracer ----------------------------------------------------------------------------------------------

class Strace:
    """A ``Kernel.tracer`` that writes one strace-like line per syscall.

    ``out`` is a text stream or a ``write(str)`` callable (default: stdout). ``structs`` decodes the
    buffers the calls read and fill; ``strsize`` caps printed strings (strace's ``-s``). Lines are
    written whole under ``_mu``, so tasks driven by several threads never interleave within a line.
    Guarded by ``_mu``: ``_unfinished``.
    """

    def __init__(self, out: TextIO | Callable[[str], Any] | None = None, structs: bool = False,
                 strsize: int = 32) -> None:
        if out is None:
            out = sys.stdout
        self._write: Callable[[str], Any] = out.write if hasattr(out, "write") else out
        self.structs = structs
        self.strsize = strsize
        self._mu = threading.Lock()
        self._unfinished: dict[int, str] = {}

    def install(self, kernel: Kernel) -> Strace:
        """Trace every syscall of ``kernel`` and print signal deliveries to handlers."""
        kernel.tracer = self
        kernel.on_signal = self.signal
        return self

    # Formatting --------------------------------------------------------------------------------------------
    def _decode(self, task: Task, nr: int, args: tuple[int, ...], ret: int | None) -> tuple[str, list[str], int]:
        name = task.kernel.syscall_table.name(nr)
        c = _Call(task, args, ret, self.structs, self.strsize)
        try:
            parts, out_from = DECODERS.get(name, _fallback)(c)
        except Exception:  # a formatter bug must never disturb the traced syscall
            parts, out_from = _fallback(c)
        return name, parts, out_from

    def format(self, task: Task, nr: int, args: tuple[int, ...], ret: int) -> str:
        """The complete line (without newline) for a finished syscall."""
        name, parts, _ = self._decode(task, nr, args, ret)
        return f"[pid {task.tid}] {name}({', '.join(parts)}) {result_text(ret)}"

    def __call__(self, task: Task, nr: int, args: tuple[int, ...], ret: int) -> None:
        with self._mu:
            name = self._unfinished.pop(task.tid, None)
        if name is None:
            line = self.format(task, nr, args, ret)
        else:
            _, parts, out_from = self._decode(task, nr, args, ret)
            tail = ", ".join(parts[out_from:])
            line = f"[pid {task.tid}] <... {name} resumed>{tail}) {result_text(ret)}"
        self._emit(line)

    def unfinished(self, task: Task, nr: int, args: tuple[int, ...]) -> None:
        """Print the entry half of a syscall that is blocked (``... <unfinished ...>``); its result is
        printed as ``<... name resumed>`` when it returns. Call it once the task is seen asleep."""
        name, parts, out_from = self._decode(task, nr, args, None)
        shown = parts[:out_from]
        head = ", ".join(shown) + (", " if out_from < len(parts) else "")
        with self._mu:
            self._unfinished[task.tid] = name
        self._emit(f"[pid {task.tid}] {name}({head}<unfinished ...>")

    def signal(self, task: Task, info: SigInfo) -> None:
        """``Kernel.on_signal`` hook: ``--- SIGUSR1 {si_signo=...} ---`` when a handler runs."""
        self._emit(f"[pid {task.tid}] --- {signame(info.signo)} {siginfo_text(info)} ---")

    def _emit(self, line: str) -> None:
        with self._mu:
            self._write(line + "\n")


__all__ = ["Strace", "DECODERS", "errno_text", "result_text", "open_flags", "ipc_flags", "msgctl_cmd", "signame",
           "siginfo_text", "quote", "flags", "ptr"]
