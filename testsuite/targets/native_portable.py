"""What the native target needs from the kernel it runs on, and the portable fallbacks it uses when
that kernel (gVisor, an older Linux, a locked-down container) lacks something.

Linux counterpart: fs/proc/base.c (``/proc/<pid>/task/<tid>/syscall``, ``/proc/<pid>/mem``),
mm/process_vm_access.c, fs/namespace.c (mount propagation). gVisor counterpart:
pkg/sentry/fsimpl/proc (which, in the 2022 ``runsc`` Debian ships, has no ``syscall`` file and refuses
writes to ``mem``) and pkg/sentry/syscalls/linux (``process_vm_writev`` is ENOSYS there).

The fallbacks, used only where the probe finds a feature missing (``MQSENTRY_NATIVE_PORTABLE=1``
forces all of them, so they are testable on Linux):

* **No ``/proc/<pid>/task/<tid>/syscall``.** Test syscalls are issued through a few bytes of machine
  code (:data:`SYSCALL_STUB`) that publish the syscall number in a per-thread word, make the raw
  syscall and reset the word, all without the GIL: a thread whose word names the syscall and whose
  ``stat`` state is ``S`` is asleep inside that syscall, not waiting for the GIL on the way in.
* **No cross-process memory writes** (``/proc/<pid>/mem`` writes fail, no ``process_vm_writev``):
  every test process runs one extra *memory thread*, with every signal blocked (so no signal a test
  sends is ever delivered to it), that copies bytes into its own address space through a pipe
  (``read(2)`` into the target address: a bad address is EFAULT, never a crash). It keeps working
  while every test thread of the process sleeps in a syscall.
* **No mount-propagation change** (``MS_REC | MS_PRIVATE`` on ``/`` is EINVAL): the private mount
  namespace is used as it is; only a test that needs its mounts hidden from the host would care.
"""

from __future__ import annotations

import ctypes
import functools
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: ``long stub(int64_t *status, long nr, const long args[6])``: ``*status = nr``, the raw syscall
#: with the six arguments, ``*status = -1``, return rax (the result or -errno). Assembled with GNU as
#: and verified with ``objdump -d -M intel``::
#:
#:    0: 48 89 37        mov    QWORD PTR [rdi],rsi
#:    3: 57              push   rdi
#:    4: 48 89 f0        mov    rax,rsi
#:    7: 49 89 d3        mov    r11,rdx
#:    a: 49 8b 3b        mov    rdi,QWORD PTR [r11]
#:    d: 49 8b 73 08     mov    rsi,QWORD PTR [r11+0x8]
#:   11: 49 8b 53 10     mov    rdx,QWORD PTR [r11+0x10]
#:   15: 4d 8b 53 18     mov    r10,QWORD PTR [r11+0x18]
#:   19: 4d 8b 43 20     mov    r8,QWORD PTR [r11+0x20]
#:   1d: 4d 8b 4b 28     mov    r9,QWORD PTR [r11+0x28]
#:   21: 0f 05           syscall
#:   23: 5f              pop    rdi
#:   24: 48 c7 07 ff ff ff ff  mov QWORD PTR [rdi],0xffffffffffffffff
#:   2b: c3              ret
SYSCALL_STUB = bytes.fromhex(
    "488937" "57" "4889f0" "4989d3" "498b3b" "498b7308" "498b5310" "4d8b5318" "4d8b4320" "4d8b4b28"
    "0f05" "5f" "48c707ffffffff" "c3")
#: Where the stub sits in the native target's executable stub page (after the signal restorer).
SYSCALL_STUB_OFFSET = 0xC0

_SYSCALL_FN = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p)


@dataclass(frozen=True)
class Features:
    """What the probe found on the kernel the tests run on."""

    unshare: bool
    make_private: bool
    syscall_file: bool
    mem_read: bool
    mem_write: bool

    def missing(self) -> list[str]:
        out = []
        if not self.make_private:
            out.append("mount propagation change (MS_REC|MS_PRIVATE on /)")
        if not self.syscall_file:
            out.append("/proc/<pid>/task/<tid>/syscall")
        if not self.mem_read:
            out.append("/proc/<pid>/mem reads")
        if not self.mem_write:
            out.append("/proc/<pid>/mem writes")
        return out


_NR_UNSHARE, _NR_MOUNT, _NR_GETTID = 272, 165, 186
_CLONE_NEWIPC_NEWNS = 0x08000000 | 0x00020000
_MS_REC_PRIVATE = 0x4000 | 0x40000


def forced() -> bool:
    """``MQSENTRY_NATIVE_PORTABLE=1``: behave as if every optional feature were missing."""
    return os.environ.get("MQSENTRY_NATIVE_PORTABLE", "") not in ("", "0")


@functools.cache
def features() -> Features:
    """Probe the running kernel once per process (in a forked child, so nothing here changes)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def raw(nr: int, *args: int) -> int:
        r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        return -ctypes.get_errno() if r == -1 else r

    pid = os.fork()
    if pid == 0:
        code = 64
        try:
            if raw(_NR_UNSHARE, _CLONE_NEWIPC_NEWNS) == 0:
                code |= 1
                root = ctypes.create_string_buffer(b"/")
                if raw(_NR_MOUNT, 0, ctypes.addressof(root), 0, _MS_REC_PRIVATE, 0) == 0:
                    code |= 2
            if os.path.exists(f"/proc/self/task/{raw(_NR_GETTID)}/syscall"):
                code |= 4
            buf = ctypes.create_string_buffer(b"probe", 8)
            rd, wr = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(wr)
                os.read(rd, 1)
                os._exit(0 if buf.raw[:5] == b"PROBE" else 1)
            os.close(rd)
            try:
                fd = os.open(f"/proc/{child}/mem", os.O_RDWR)
                try:
                    if os.pread(fd, 5, ctypes.addressof(buf)) == b"probe":
                        code |= 8
                    try:
                        os.pwrite(fd, b"PROBE", ctypes.addressof(buf))
                    except OSError:
                        pass
                finally:
                    os.close(fd)
            except OSError:
                pass
            os.write(wr, b"x")
            _, st = os.waitpid(child, 0)
            if os.waitstatus_to_exitcode(st) == 0:
                code |= 16
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if not 64 <= code < 128:
        code = 64  # the probe crashed: assume nothing optional
    if forced():
        code &= ~(2 | 4 | 16)
    return Features(bool(code & 1), bool(code & 2), bool(code & 4), bool(code & 8), bool(code & 16))


def use_stub() -> bool:
    """Whether test syscalls go through :data:`SYSCALL_STUB` (see the module docstring)."""
    return not features().syscall_file


def use_memory_thread() -> bool:
    """Whether each test process runs a memory thread (see the module docstring)."""
    f = features()
    return not (f.mem_write and f.mem_read)


def syscall_caller(stub_addr: int, status_addr: int) -> Callable[[int, tuple[int, ...]], int]:
    """A function that runs one raw syscall through the stub at ``stub_addr`` (in this process),
    publishing its number in the int64 at ``status_addr`` while it is in flight."""
    fn = _SYSCALL_FN(stub_addr)
    args = (ctypes.c_long * 6)()
    argp = ctypes.addressof(args)

    def call(nr: int, a: tuple[int, ...]) -> int:
        for i in range(6):
            args[i] = a[i] if i < len(a) else 0
        return int(fn(status_addr, nr, argp))

    return call


# -- the memory thread (runs in a test process) ------------------------------------------------------

_CHUNK = 32 << 10  # below the default pipe capacity (64 KiB), so one write never blocks
_NR_READ, _NR_WRITE, _NR_RT_SIGPROCMASK = 0, 1, 14


def start_memory_thread(recv: Callable[[socket.socket], Any], send: Callable[[socket.socket, Any], None],
                        raw: Callable[..., int], high_fd: Callable[[int], int]) -> socket.socket:
    """Start the memory thread of the calling process; returns the worker's end of its channel
    (to be handed to the worker). ``recv``/``send`` are the target's framing functions; ``high_fd``
    moves a descriptor out of the range tests use (every descriptor here is made before the thread
    starts, so none appears while a test runs)."""
    a, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    mine = socket.socket(fileno=high_fd(a.detach()))
    p0, p1 = os.pipe()
    rd, wr = high_fd(p0), high_fd(p1)
    ready = threading.Event()

    def main() -> None:
        # Block every signal (real-time ones too, which signal.Signals does not name) in this thread
        # before anything else: it must never take a signal a test sends.
        allsig = ctypes.c_uint64(0xFFFF_FFFF_FFFF_FFFF)
        raw(_NR_RT_SIGPROCMASK, 0, ctypes.addressof(allsig), 0, 8)  # SIG_BLOCK
        ready.set()
        while True:
            try:
                msg = recv(mine)
            except (EOFError, OSError):
                return
            if msg[0] == "w":
                send(mine, _copy_in(raw, rd, wr, msg[1], msg[2]))
            elif msg[0] == "r":
                send(mine, _copy_out(raw, rd, wr, msg[1], msg[2]))
            else:
                send(mine, ("error", f"memory thread: unknown command {msg[0]!r}"))

    threading.Thread(target=main, name="native-memory", daemon=True).start()
    ready.wait()
    return theirs


def _copy_in(raw: Callable[..., int], rd: int, wr: int, addr: int, data: bytes) -> Any:
    """Write ``data`` at ``addr`` in this process: through the pipe, so a bad address is EFAULT."""
    off = 0
    while off < len(data):
        chunk = data[off:off + _CHUNK]
        os.write(wr, chunk)
        got = raw(_NR_READ, rd, addr + off, len(chunk))
        if got != len(chunk):
            _drain(rd, len(chunk) - max(got, 0))
            return ("oserror", -got if got < 0 else 5, f"write at {addr + off:#x}")
        off += len(chunk)
    return len(data)


def _copy_out(raw: Callable[..., int], rd: int, wr: int, addr: int, n: int) -> Any:
    """Read ``n`` bytes at ``addr`` in this process (EFAULT for a bad address)."""
    out = bytearray()
    while len(out) < n:
        k = min(_CHUNK, n - len(out))
        put = raw(_NR_WRITE, wr, addr + len(out), k)
        if put != k:
            if put > 0:
                _drain(rd, put)
            return ("oserror", -put if put < 0 else 5, f"read at {addr + len(out):#x}")
        out += os.read(rd, k)
    return bytes(out)


def _drain(rd: int, n: int) -> None:
    while n > 0:
        got = os.read(rd, n)
        if not got:
            return
        n -= len(got)


__all__ = [
    "SYSCALL_STUB",
    "SYSCALL_STUB_OFFSET",
    "Features",
    "features",
    "forced",
    "start_memory_thread",
    "syscall_caller",
    "use_memory_thread",
    "use_stub",
]
