"""seccomp user notification from pure ctypes: constants, structs, a BPF builder, the listener.

Linux counterpart: include/uapi/linux/seccomp.h, include/uapi/linux/filter.h and
kernel/seccomp.c (``seccomp_notify_ioctl``: RECV, SEND, ID_VALID, ADDFD, SET_FLAGS).
gVisor counterpart: pkg/seccomp (its BPF program builder) and pkg/sentry/platform, whose
platforms trap a real process's syscalls; this one traps only the few the sentry serves.

Pitfalls handled here (docs/platform-rules.md §4): the notification buffer is
zeroed before every RECV (the kernel rejects a dirty one with EINVAL); RECV is only issued after
poll() reported POLLIN, and ENOENT from RECV (a withdrawn notification) is reported as "nothing";
ENOENT from SEND means the target went away.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable, Sequence
from fcntl import ioctl as _fioctl

# -- syscalls and constants (x86_64) -----------------------------------------------------------------
NR_SECCOMP = 317
NR_PIDFD_OPEN = 434
NR_PIDFD_GETFD = 438
NR_RT_SIGQUEUEINFO = 129
NR_PROCESS_VM_READV = 310
NR_PROCESS_VM_WRITEV = 311

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5

SECCOMP_RET_KILL_PROCESS = 0x8000_0000
SECCOMP_RET_ERRNO = 0x0005_0000
SECCOMP_RET_USER_NOTIF = 0x7FC0_0000
SECCOMP_RET_ALLOW = 0x7FFF_0000

SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_ADDFD_FLAG_SETFD = 1
SECCOMP_ADDFD_FLAG_SEND = 2
SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1

SECCOMP_IOCTL_NOTIF_RECV = 0xC050_2100
SECCOMP_IOCTL_NOTIF_SEND = 0xC018_2101
SECCOMP_IOCTL_NOTIF_ID_VALID = 0x4008_2102
SECCOMP_IOCTL_NOTIF_ADDFD = 0x4018_2103
SECCOMP_IOCTL_NOTIF_SET_FLAGS = 0x4008_2104

AUDIT_ARCH_X86_64 = 0xC000_003E
#: An i386 call (a 32-bit program, or int 0x80 from a 64-bit one): i386 numbers, compat structures.
AUDIT_ARCH_I386 = 0x4000_0003
X32_SYSCALL_BIT = 0x4000_0000
ENOSYS = 38
ENOENT = 2
EINTR = 4

# classic BPF opcodes
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06

#: ``struct seccomp_data`` offsets.
DATA_NR = 0
DATA_ARCH = 4

#: ``struct seccomp_notif`` (80 bytes): id, pid, flags, then seccomp_data (nr, arch, ip, args[6]).
NOTIF = struct.Struct("=QIIiIQ6Q")
#: ``struct seccomp_notif_resp`` (24 bytes): id, val, error, flags.
RESP = struct.Struct("=QqiI")
#: ``struct seccomp_notif_addfd`` (24 bytes): id, flags, srcfd, newfd, newfd_flags.
ADDFD = struct.Struct("=QIIII")
assert NOTIF.size == 80 and RESP.size == 24 and ADDFD.size == 24
_RESP_PACK = RESP.pack
_U64_PACK = struct.Struct("=Q").pack
_NOTIF_UNPACK = NOTIF.unpack

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_ioctl = _libc.ioctl
_ioctl.restype = ctypes.c_int
_ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)


def _err(what: str) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, f"{what}: {os.strerror(e)}")


# -- BPF ---------------------------------------------------------------------------------------------
class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


Insn = tuple[int, int, int, int]


def stmt(code: int, k: int) -> Insn:
    return (code, 0, 0, k)


def jump(code: int, k: int, jt: int, jf: int) -> Insn:
    return (code, jt, jf, k)


def build_filter(notify: Iterable[int], cont: Iterable[int] = (), notify32: Iterable[int] = (),
                 cont32: Iterable[int] = ()) -> list[Insn]:
    """The platform's filter: x86_64 numbers in ``notify`` (and ``cont``, syscalls the sentry only
    observes) go to the listener, x32 numbers get ENOSYS; i386 calls (AUDIT_ARCH_I386) in ``notify32``
    and ``cont32`` go to the listener too (without them i386 calls are killed, like any other
    architecture's); the rest run.

    A linear list of JEQs per architecture: with a dozen numbers it costs the allowed path a few dozen
    nanoseconds.
    """
    x64 = [stmt(BPF_LD_W_ABS, DATA_NR), jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
           stmt(BPF_RET_K, SECCOMP_RET_ERRNO | ENOSYS), *_notify_list(set(notify) | set(cont))]
    nrs32 = set(notify32) | set(cont32)
    i386 = [stmt(BPF_LD_W_ABS, DATA_NR), *_notify_list(nrs32)] if nrs32 else []
    return [
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 2, 0),  # -> the x86_64 part
        # -> the i386 part (when there is none, a jump to the KILL that follows)
        jump(BPF_JEQ_K, AUDIT_ARCH_I386, 1 + len(x64) if i386 else 0, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        *x64,
        *i386,
    ]


def _notify_list(nrs: set[int]) -> list[Insn]:
    """JEQs for ``nrs`` jumping to a USER_NOTIF return, with ALLOW for everything else."""
    prog = []
    n = len(nrs)
    for i, nr in enumerate(sorted(nrs)):
        # On a match jump to the USER_NOTIF return, which follows the ALLOW after the last JEQ.
        prog.append(jump(BPF_JEQ_K, nr, n - i, 0))
    prog.append(stmt(BPF_RET_K, SECCOMP_RET_ALLOW))
    prog.append(stmt(BPF_RET_K, SECCOMP_RET_USER_NOTIF))
    return prog


def encode_filter(prog: Sequence[Insn]) -> bytes:
    """The program as the bytes of a ``struct sock_filter`` array (what the launcher receives)."""
    return b"".join(struct.pack("=HBBI", c, jt, jf, k) for c, jt, jf, k in prog)


def install_filter(code: bytes, flags: int) -> int:
    """``seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`` for the calling thread; returns the listener
    fd when ``flags`` asks for NEW_LISTENER. Without CAP_SYS_ADMIN the caller must have set
    no_new_privs first (the kernel says EACCES otherwise)."""
    n = len(code) // 8
    arr = (SockFilter * n).from_buffer_copy(code)
    prog = SockFprog(n, ctypes.cast(arr, ctypes.POINTER(SockFilter)))
    ret = _syscall(ctypes.c_long(NR_SECCOMP), ctypes.c_long(SECCOMP_SET_MODE_FILTER), ctypes.c_long(flags),
                   ctypes.byref(prog))
    if ret < 0:
        raise _err("seccomp(SET_MODE_FILTER)")
    return int(ret)


def notif_sizes() -> tuple[int, int, int] | None:
    """``SECCOMP_GET_NOTIF_SIZES``, or None when the kernel lacks user notification."""
    buf = (ctypes.c_uint16 * 3)()
    ret = _syscall(ctypes.c_long(NR_SECCOMP), ctypes.c_long(SECCOMP_GET_NOTIF_SIZES), ctypes.c_long(0),
                   ctypes.byref(buf))
    if ret < 0:
        return None
    return buf[0], buf[1], buf[2]


# -- the listener ------------------------------------------------------------------------------------
class Notification:
    """One decoded ``struct seccomp_notif``. Immutable."""

    __slots__ = ("id", "pid", "nr", "arch", "args")

    def __init__(self, raw: bytes | bytearray) -> None:
        v = _NOTIF_UNPACK(raw)
        self.id, self.pid, self.nr, self.arch = v[0], v[1], v[3], v[4]
        self.args: tuple[int, ...] = v[6:]

    def __repr__(self) -> str:
        return f"<notif id={self.id:#x} tid={self.pid} nr={self.nr} args={self.args}>"

    def as_nr(self, nr: int) -> Notification:
        """The same notification under another number (an i386 call seen by x86_64-keyed hooks)."""
        other = Notification.__new__(Notification)
        other.id, other.pid, other.nr, other.arch, other.args = self.id, self.pid, nr, self.arch, self.args
        return other


class Listener:
    """A seccomp notification fd (owned: :meth:`close` closes it).

    The ioctls are made through ctypes with preallocated buffers; ctypes drops the GIL around them, so
    a thread parked in poll/RECV never stalls the others. ``recv`` uses a per-call buffer because
    several threads may receive in turn (only one at a time, under the platform's loop ownership).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def set_flags(self, flags: int) -> None:
        if _ioctl(self.fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) < 0:
            raise _err("SECCOMP_IOCTL_NOTIF_SET_FLAGS")

    def try_sync_wake_up(self) -> bool:
        """SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux >= 6.6): the target and the listener hand the CPU
        to each other instead of waking an idle one; False when unsupported."""
        try:
            self.set_flags(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
            return True
        except OSError:
            return False

    # The hot ioctls go through fcntl.ioctl (a C call: ~0.3 µs, against ~1.5 µs for a ctypes call);
    # it releases the GIL around the ioctl.
    def recv(self) -> Notification | None:
        """Receive one notification (call only after poll() said POLLIN); None if it was withdrawn
        (the target was killed or interrupted between the poll and now)."""
        buf = bytearray(80)  # zeroed: a dirty buffer is EINVAL
        try:
            _fioctl(self.fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
        except OSError as e:
            if e.errno in (ENOENT, EINTR):
                return None
            raise
        return Notification(buf)

    def send(self, nid: int, val: int = 0, error: int = 0, flags: int = 0) -> bool:
        """Complete a notification with ``val`` or ``-error`` (error is negative or 0); False if the
        target went away (ENOENT: killed, or interrupted in non-killable mode)."""
        try:
            _fioctl(self.fd, SECCOMP_IOCTL_NOTIF_SEND, _RESP_PACK(nid, val, error, flags))
        except OSError as e:
            if e.errno == ENOENT:
                return False
            raise
        return True

    def send_continue(self, nid: int) -> bool:
        """Let the host kernel run the syscall itself (SECCOMP_USER_NOTIF_FLAG_CONTINUE)."""
        return self.send(nid, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)

    def id_valid(self, nid: int) -> bool:
        """Is notification ``nid`` still pending (the target alive and still in the syscall)?"""
        try:
            _fioctl(self.fd, SECCOMP_IOCTL_NOTIF_ID_VALID, _U64_PACK(nid))
        except OSError:
            return False
        return True

    def addfd(self, nid: int, srcfd: int, newfd_flags: int, send: bool = True) -> int:
        """Install a dup of our ``srcfd`` in the target (lowest free fd, ``newfd_flags`` such as
        O_CLOEXEC); with ``send`` the syscall completes at once with the new fd number as its result.
        Returns that number; raises OSError (ENOENT: the target went away; EMFILE...)."""
        flags = SECCOMP_ADDFD_FLAG_SEND if send else 0
        buf = ctypes.create_string_buffer(ADDFD.pack(nid, flags, srcfd, 0, newfd_flags), ADDFD.size)
        ret = _ioctl(self.fd, SECCOMP_IOCTL_NOTIF_ADDFD, buf)
        if ret < 0:
            raise _err("SECCOMP_IOCTL_NOTIF_ADDFD")
        return int(ret)


# -- small syscall wrappers the platform needs ----------------------------------------------------------
def pidfd_open(pid: int, flags: int = 0) -> int:
    ret = _syscall(ctypes.c_long(NR_PIDFD_OPEN), ctypes.c_long(pid), ctypes.c_long(flags))
    if ret < 0:
        raise _err("pidfd_open")
    return int(ret)


def pidfd_getfd(pidfd: int, fd: int) -> int:
    ret = _syscall(ctypes.c_long(NR_PIDFD_GETFD), ctypes.c_long(pidfd), ctypes.c_long(fd), ctypes.c_long(0))
    if ret < 0:
        raise _err("pidfd_getfd")
    return int(ret)


def rt_sigqueueinfo(tgid: int, sig: int, info: bytes) -> None:
    """Queue a process-directed signal with an explicit ``siginfo_t`` (si_code < 0 is allowed for
    another process, which is how the sentry forges SI_MESGQ)."""
    buf = ctypes.create_string_buffer(info, 128)
    ret = _syscall(ctypes.c_long(NR_RT_SIGQUEUEINFO), ctypes.c_long(tgid), ctypes.c_long(sig), buf)
    if ret < 0:
        raise _err("rt_sigqueueinfo")


__all__ = ["Listener", "Notification", "build_filter", "encode_filter", "install_filter", "notif_sizes",
           "pidfd_open", "pidfd_getfd", "rt_sigqueueinfo"]
