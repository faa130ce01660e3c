"""The ``native`` target: the host Linux kernel, driven through raw syscalls in real processes.

Linux counterpart: none (this *is* Linux); it plays the role of gVisor's ``native`` test runner, which
runs test/syscalls/linux binaries directly on the host to prove that a test encodes Linux behaviour.

Design (the pytest worker never changes its own credentials, signal dispositions or namespaces, and
never receives a signal a test sends):

* **Zygote.** ``NativeTarget()`` forks a root helper from the worker. It enters a fresh IPC namespace
  and a private mount namespace (``unshare(CLONE_NEWIPC | CLONE_NEWNS)`` + ``/`` made recursively
  private), blocks every signal, resets every disposition to SIG_DFL, maps the signal-recording stub
  (see below), and serves control requests (spawn, /proc file access, reaping) over a socket. Being
  single-threaded, it can fork safely.
* **Processes.** Each spawned process is a fork of the zygote that sets its identity with raw
  syscalls (setgroups, setresgid, PR_SET_KEEPCAPS, setresuid, capset) and then serves one command
  channel (a unix stream socket) per :class:`NativeTask`, each on its own OS thread, so raw syscalls
  act on the thread the handle names (credentials and signal masks are per thread on Linux).
  ``thread()`` starts a Python thread in the process; ``fork()`` forks from the requesting thread.
  New channels travel to the process with SCM_RIGHTS.
* **Memory.** ``alloc`` runs mmap+mprotect in the process (a PROT_NONE guard page follows every
  region); ``read``/``write`` and the signal ring go through ``/proc/<pid>/mem`` from the worker, so
  they work while every thread of the process sleeps in a syscall, and a bad address is an error
  instead of a crash.
* **Signal stub.** A page of hand-assembled x86-64 code mapped by the zygote (so every process of the
  test has it at the same address): a ``SA_SIGINFO`` handler that appends the 128-byte siginfo to a
  per-process ring, and a restorer that calls rt_sigreturn.

Hygiene: the zygote disables the cycle collector (the worker's garbage must not close descriptors a
test has reused), moves channel descriptors just below RLIMIT_NOFILE, drops faulthandler's alternate
signal stack, and puts each spawned process in a process group of its own (as the sentry does) inside
the zygote's session, so kill(0, sig) never reaches the pytest worker. ``is_blocked`` also checks a
per-thread word in which the serving thread publishes the syscall number it is issuing, so the idle
wait on the channel (a recvfrom) never looks like a test's recvfrom. While every thread of a process
sleeps, ``alloc`` hands out pages of a small reserve mapped at process start (RESERVE_SLOTS).
Each ``alloc`` costs two VMAs (data + guard), so one process can make about 32k allocations under the
default vm.max_map_count.

Every process dies with its test: the zygote has PR_SET_PDEATHSIG, spawned processes have it against
the zygote, the zygote is the subreaper of everything below it, and :meth:`NativeTarget.close` kills
and reaps the whole tree. A process that crashes closes its channels, which the worker reports as a
:class:`NativeChildError` (reads also time out, so nothing hangs for ever).
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import gc
import os
import pickle
import platform
import resource
import shutil
import socket
import struct
import tempfile
import threading
import time
import traceback
from typing import Any, ClassVar

from mqsentry.abi.linux.capability import CAP_DATA, LINUX_CAPABILITY_VERSION_3
from mqsentry.abi.linux.sched import CLONE_NEWIPC, CLONE_NEWNS
from mqsentry.abi.linux.signal import NSIG, SIGACTION, SIGINFO, SIGKILL, SIGSTOP
from mqsentry.abi.linux.sysno import NUMBERS
from mqsentry.testsuite.targets import native_portable as portable
from mqsentry.testsuite.targets.base import Delivery, Target, TaskHandle

_NR = NUMBERS["amd64"]
_PAGE = 4096

# mmap/mprotect/prctl/mount constants (include/uapi/asm-generic/mman-common.h, linux/prctl.h, mount.h).
_PROT_NONE, _PROT_READ, _PROT_WRITE, _PROT_EXEC = 0, 1, 2, 4
_MAP_PRIVATE, _MAP_ANONYMOUS = 0x02, 0x20
_PR_SET_PDEATHSIG = 1
_PR_SET_KEEPCAPS = 8
_PR_SET_CHILD_SUBREAPER = 36
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
_SS_DISABLE = 2

#: Seconds the worker waits for a control reply, and for a syscall (a blocked syscall legitimately
#: waits for the test; this only bounds a test that forgot to wake it).
_CONTROL_TIMEOUT = 30.0
_SYSCALL_TIMEOUT = 120.0
#: Seconds a request waits for its thread's previous request to finish.
_BUSY_TIMEOUT = 10.0

# -- the signal-recording stub -------------------------------------------------------------------------

#: Ring capacity (entries of 128 bytes); later deliveries are counted but not recorded.
RING_ENTRIES = 1024
#: The ring: a u64 reservation counter, padding to 64 bytes, then the entries.
_RING_HDR = 64
_RING_SIZE = _RING_HDR + RING_ENTRIES * SIGINFO.size

#: ``void handler(int sig, siginfo_t *si, void *uc)``: reserve a slot with ``lock xadd`` on the ring
#: counter, copy siginfo bytes 8..127 first and the first qword (signo, with si_signo forced to the
#: ``sig`` argument) last, so a reader sees a slot as complete once its signo is non-zero. Verified with
#: ``objdump -D -b binary -mi386:x86-64 -M intel``::
#:
#:    0: 41 89 f8                 mov    r8d,edi
#:    3: 48 b8 <ring imm64>       movabs rax,RING
#:    d: b9 01 00 00 00           mov    ecx,0x1
#:   12: f0 48 0f c1 08           lock xadd QWORD PTR [rax],rcx
#:   17: 48 81 f9 00 04 00 00     cmp    rcx,0x400          ; RING_ENTRIES
#:   1e: 73 2b                    jae    0x4b
#:   20: 48 c1 e1 07              shl    rcx,0x7
#:   24: 48 8d 54 08 40           lea    rdx,[rax+rcx*1+0x40]
#:   29: 48 8d 7a 08              lea    rdi,[rdx+0x8]
#:   2d: 48 83 c6 08              add    rsi,0x8
#:   31: b9 0f 00 00 00           mov    ecx,0xf
#:   36: f3 48 a5                 rep movs QWORD PTR es:[rdi],QWORD PTR ds:[rsi]
#:   39: 48 8b 4e 80              mov    rcx,QWORD PTR [rsi-0x80]
#:   3d: 48 c1 e9 20              shr    rcx,0x20
#:   41: 48 c1 e1 20              shl    rcx,0x20
#:   45: 4c 09 c1                 or     rcx,r8
#:   48: 48 89 0a                 mov    QWORD PTR [rdx],rcx
#:   4b: c3                       ret
_HANDLER_HEAD = bytes.fromhex("4189f8" "48b8")
_HANDLER_TAIL = bytes.fromhex(
    "b901000000" "f0480fc108" "4881f900040000" "732b" "48c1e107" "488d540840" "488d7a08" "4883c608"
    "b90f000000" "f348a5" "488b4e80" "48c1e920" "48c1e120" "4c09c1" "48890a" "c3")
#: ``mov eax, 15 (rt_sigreturn); syscall``.
_RESTORER = bytes.fromhex("b80f000000" "0f05")
_RESTORER_OFFSET = 0x80


def _stub_code(ring: int) -> tuple[bytes, int]:
    """The stub page's contents for a ring at ``ring``, and the restorer's offset in it."""
    handler = _HANDLER_HEAD + struct.pack("<Q", ring) + _HANDLER_TAIL
    assert len(handler) == 0x4C and RING_ENTRIES == 0x400 and SIGINFO.size == 128
    code = handler.ljust(_RESTORER_OFFSET, b"\xcc") + _RESTORER
    code = code.ljust(portable.SYSCALL_STUB_OFFSET, b"\xcc") + portable.SYSCALL_STUB
    return code, _RESTORER_OFFSET


#: The stub page's address in the zygote and every process below it (0 in the worker).
_STUB_BASE = 0


# -- raw syscalls ----------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc_syscall = _libc.syscall
_libc_syscall.restype = ctypes.c_long
_c_long = ctypes.c_long


def _raw(nr: int, *args: int) -> int:
    """One raw syscall on the calling OS thread: the result, or -errno."""
    ret = _libc_syscall(_c_long(nr), *[_c_long(a) for a in args])
    if ret == -1:
        return -ctypes.get_errno()
    return ret


def _must(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


class NativeChildError(RuntimeError):
    """A process or the zygote of the native target died, failed, or did not answer in time."""


# -- framing -----------------------------------------------------------------------------------------------

_HDR = struct.Struct("<I")


def _send(sock: socket.socket, msg: Any, fd: int | None = None) -> None:
    data = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HDR.pack(len(data)) + data)
    if fd is not None:
        # A separate one-byte message carries the descriptor, read with recv_fds right after the frame.
        socket.send_fds(sock, [b"F"], [fd])


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError
        got += k
    return bytes(buf)


def _recv(sock: socket.socket) -> Any:
    hdr = sock.recv(4)
    if len(hdr) < 4:
        if not hdr:
            raise EOFError
        hdr += _recv_exact(sock, 4 - len(hdr))
    (n,) = _HDR.unpack(hdr)
    return pickle.loads(_recv_exact(sock, n))


def _recv_fd(sock: socket.socket) -> int:
    _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    if not fds:
        raise EOFError("expected a descriptor")
    return fds[0]


def _high_fd(fd: int) -> int:
    """Move a channel descriptor out of the way of the descriptors tests create and name (a test
    closing "fd 4" or probing a bad fd must not hit a channel): just below RLIMIT_NOFILE's soft
    limit."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    base = max(64, min(soft, 1 << 20) - 128)
    try:
        new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base)
    except OSError:
        return fd
    os.close(fd)
    return new


# ===========================================================================================================
# Code that runs in the zygote and in the test processes (forks of the pytest worker).
# ===========================================================================================================

class _Proc:
    """Per-process state of a test process (module-global in each child; ``mu`` guards ``live`` and
    ``channels``)."""

    mu = threading.Lock()
    live = 0
    channels: ClassVar[set[socket.socket]] = set()


def _reset_ring(ring: int) -> None:
    ctypes.memset(ring, 0, _RING_SIZE)


def _child_exit_thread(sock: socket.socket) -> None:
    """End the calling serving thread; the process ends with its last one."""
    with _Proc.mu:
        _Proc.channels.discard(sock)
        _Proc.live -= 1
        last = _Proc.live <= 0
    try:
        sock.close()
    except OSError:
        pass
    if last:
        os._exit(0)
    if _raw(_NR["gettid"]) == _raw(_NR["getpid"]):
        # The OS main thread cannot return to Python's top level without ending the process: end only
        # this thread, as exit(2) does (ctypes drops the GIL for the call, so the others go on).
        _raw(_NR["exit"], 0)
    # Other threads return from their Python thread function, which ends the OS thread.


def _serve(sock: socket.socket, ring: int, reserve: int = 0, first: bool = False) -> None:
    """Serve one channel on the calling OS thread until exit or EOF. The first thread of a process
    reports the process's fresh allocation reserve in its hello, and where the kernel lacks
    cross-process memory writes it starts the process's memory thread and sends its channel."""
    nr_tid, nr_pid = _NR["gettid"], _NR["getpid"]
    # The number of the syscall this thread is issuing, -1 between requests: the worker reads it
    # through /proc/<pid>/mem, so is_blocked cannot mistake the idle wait on the channel (a recvfrom)
    # for a test's own recvfrom.
    status = ctypes.c_int64(-1)
    stub = portable.syscall_caller(_STUB_BASE + portable.SYSCALL_STUB_OFFSET, ctypes.addressof(status)) \
        if portable.use_stub() else None
    try:
        memsock = portable.start_memory_thread(_recv, _send, _raw, _high_fd) if first and portable.use_memory_thread() \
            else None
        _send(sock, ("hello", _raw(nr_pid), _raw(nr_tid), reserve, ctypes.addressof(status), memsock is not None))
        if memsock is not None:
            socket.send_fds(sock, [b"F"], [memsock.fileno()])
            memsock.close()
        while True:
            try:
                msg = _recv(sock)
            except (EOFError, OSError):
                break
            cmd = msg[0]
            if cmd == "s":
                if stub is not None:
                    # Publishes the number without the GIL (native_portable's module docstring).
                    ret = stub(msg[1], msg[2])
                else:
                    status.value = msg[1]
                    ret = _raw(msg[1], *msg[2])
                    status.value = -1
                _send(sock, ret)
            elif cmd == "alloc":
                _send(sock, _child_alloc(msg[1]))
            elif cmd == "thread":
                fd = _high_fd(_recv_fd(sock))
                new = socket.socket(fileno=fd)
                with _Proc.mu:
                    _Proc.live += 1
                    _Proc.channels.add(new)
                threading.Thread(target=_thread_main, args=(new, ring), daemon=True).start()
                _send(sock, "ok")
            elif cmd == "fork":
                fd = _high_fd(_recv_fd(sock))
                pid = os.fork()
                if pid == 0:
                    _after_fork_child(socket.socket(fileno=fd), ring)  # never returns
                os.close(fd)
                _send(sock, pid)
            elif cmd == "reap":
                try:
                    os.waitpid(msg[1], 0)
                except ChildProcessError:
                    pass
                _send(sock, "ok")
            elif cmd == "exit":
                _send(sock, "ok")
                break
            else:
                _send(sock, ("error", f"unknown command {cmd!r}"))
    except BaseException:
        try:
            _send(sock, ("error", traceback.format_exc()))
        except OSError:
            pass
    _child_exit_thread(sock)


def _thread_main(sock: socket.socket, ring: int) -> None:
    _serve(sock, ring)


def _child_alloc(n: int) -> int | tuple[str, str]:
    size = (max(n, 1) + _PAGE - 1) & ~(_PAGE - 1)
    addr = _raw(_NR["mmap"], 0, size + _PAGE, _PROT_READ | _PROT_WRITE, _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0)
    if addr < 0:
        return ("error", f"mmap({size}): {os.strerror(-addr)}")
    r = _raw(_NR["mprotect"], addr + size, _PAGE, _PROT_NONE)
    if r < 0:
        return ("error", f"mprotect: {os.strerror(-r)}")
    return addr


#: Pages of data in a process's reserve (each followed by a guard page): what ``alloc`` hands out while
#: every thread of the process sleeps in a syscall and none can run mmap.
RESERVE_SLOTS = 64


def _make_reserve() -> int:
    """Map the reserve: RESERVE_SLOTS data pages, each followed by a PROT_NONE guard page; 0 on failure."""
    base = _raw(_NR["mmap"], 0, 2 * _PAGE * RESERVE_SLOTS, _PROT_READ | _PROT_WRITE,
                _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0)
    if base < 0:
        return 0
    for i in range(RESERVE_SLOTS):
        _raw(_NR["mprotect"], base + (2 * i + 1) * _PAGE, _PAGE, _PROT_NONE)
    return base


def _after_fork_child(sock: socket.socket, ring: int) -> None:
    """In a process just forked from a test thread: keep only the new channel and serve it."""
    try:
        for s in list(_Proc.channels):
            try:
                s.close()
            except OSError:
                pass
        _Proc.mu = threading.Lock()  # another thread may have held the old one at fork
        _Proc.channels = {sock}
        _Proc.live = 1
        _reset_ring(ring)
        _serve(sock, ring, _make_reserve(), first=True)
    finally:
        os._exit(0)


def _set_identity(uid: int, gid: int, groups: tuple[int, ...], caps: int | None) -> None:
    """Become uid/gid/groups with the given capabilities, with raw syscalls (this thread only, and the
    process is single-threaded here)."""
    arr = (ctypes.c_uint32 * max(1, len(groups)))(*groups)
    _must(_raw(_NR["setgroups"], len(groups), ctypes.addressof(arr)), "setgroups")
    _must(_raw(_NR["setresgid"], gid, gid, gid), "setresgid")
    if caps is not None or uid != 0:
        if caps is not None and uid != 0:
            _must(_raw(_NR["prctl"], _PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS")
        _must(_raw(_NR["setresuid"], uid, uid, uid), "setresuid")
        if caps is not None:
            hdr = ctypes.create_string_buffer(struct.pack("<Ii", LINUX_CAPABILITY_VERSION_3, 0))
            data = ctypes.create_string_buffer(2 * CAP_DATA.size)
            _must(_raw(_NR["capget"], ctypes.addressof(hdr), ctypes.addressof(data)), "capget")
            lo = CAP_DATA.unpack_from(data.raw, 0)
            hi = CAP_DATA.unpack_from(data.raw, CAP_DATA.size)
            # The host's root may lack some capabilities (its bounding set); a process cannot be given
            # more than the host has, exactly as root in such a container cannot.
            have = lo[1] | hi[1] << 32
            c = caps & have
            hdr = ctypes.create_string_buffer(struct.pack("<Ii", LINUX_CAPABILITY_VERSION_3, 0))
            data = ctypes.create_string_buffer(CAP_DATA.pack(c & 0xFFFFFFFF, c & 0xFFFFFFFF, 0)
                                               + CAP_DATA.pack(c >> 32, c >> 32, 0))
            _must(_raw(_NR["capset"], ctypes.addressof(hdr), ctypes.addressof(data)), "capset")
        _must(_raw(_NR["prctl"], _PR_SET_KEEPCAPS, 0, 0, 0, 0), "PR_SET_KEEPCAPS")


def _spawned_child(zygote_pid: int, sock: socket.socket, ctl: socket.socket, ring: int,
                   uid: int, gid: int, groups: tuple[int, ...], caps: int | None) -> None:
    """Body of a process spawned by the zygote (never returns)."""
    try:
        ctl.close()
        _raw(_NR["prctl"], _PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
        if os.getppid() != zygote_pid:
            os._exit(1)
        # A process group of its own, as the sentry gives every spawned process.
        _raw(_NR["setpgid"], 0, 0)
        _Proc.mu = threading.Lock()
        _Proc.channels = {sock}
        _Proc.live = 1
        try:
            _set_identity(uid, gid, groups, caps)
        except OSError as e:
            _send(sock, ("error", f"cannot set identity uid={uid} gid={gid} groups={groups} caps={caps}: {e}"))
            os._exit(1)
        # The zygote blocks every signal; a fresh process starts with an empty mask.
        zero = ctypes.c_uint64(0)
        _raw(_NR["rt_sigprocmask"], 2, ctypes.addressof(zero), 0, 8)
        _reset_ring(ring)
        _serve(sock, ring, _make_reserve(), first=True)
    finally:
        os._exit(0)


def _zygote_main(ctl: socket.socket, worker_pid: int) -> None:
    """Body of the zygote (never returns)."""
    try:
        _raw(_NR["prctl"], _PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
        if os.getppid() != worker_pid:
            os._exit(1)
        keep = ctl.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        try:
            os.setsid()
        except OSError:
            pass
        # Stray signals (a test killing its parent) must not kill the zygote; children unblock.
        allsig = ctypes.c_uint64(0xFFFF_FFFF_FFFF_FFFF)
        _raw(_NR["rt_sigprocmask"], 2, ctypes.addressof(allsig), 0, 8)
        # Fresh processes start with default dispositions (pytest installed SIGINT/faulthandler ones).
        dfl = ctypes.create_string_buffer(SIGACTION.pack(0, 0, 0, 0))
        for sig in range(1, NSIG + 1):
            if sig not in (SIGKILL, SIGSTOP):
                _raw(_NR["rt_sigaction"], sig, ctypes.addressof(dfl), 0, 8)
        # Nor an alternate signal stack (faulthandler gave the worker's main thread one).
        ss = ctypes.create_string_buffer(struct.pack("<QiiQ", 0, _SS_DISABLE, 0, 0))
        _raw(_NR["sigaltstack"], ctypes.addressof(ss), 0)
        _must(_raw(_NR["unshare"], CLONE_NEWIPC | CLONE_NEWNS), "unshare(CLONE_NEWIPC|CLONE_NEWNS)")
        root = ctypes.create_string_buffer(b"/")
        if portable.features().make_private:
            _must(_raw(_NR["mount"], 0, ctypes.addressof(root), 0, _MS_REC | _MS_PRIVATE, 0),
                  "mount --make-rprivate /")
        _raw(_NR["prctl"], _PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        # The stub page and the ring, inherited at the same addresses by every process of the test.
        ring_pages = (_RING_SIZE + _PAGE - 1) & ~(_PAGE - 1)
        base = _must(_raw(_NR["mmap"], 0, _PAGE + ring_pages, _PROT_READ | _PROT_WRITE,
                          _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0), "mmap")
        ring = base + _PAGE
        code, restorer_off = _stub_code(ring)
        ctypes.memmove(base, code, len(code))
        global _STUB_BASE
        _STUB_BASE = base
        _must(_raw(_NR["mprotect"], base, _PAGE, _PROT_READ | _PROT_EXEC), "mprotect")
        _send(ctl, ("ready", base, base + restorer_off, ring))
    except BaseException:
        try:
            _send(ctl, ("error", traceback.format_exc()))
        finally:
            os._exit(1)
    try:
        _zygote_loop(ctl, ring)
    finally:
        os._exit(0)


def _zygote_loop(ctl: socket.socket, ring: int) -> None:
    me = os.getpid()
    while True:
        try:
            msg = _recv(ctl)
        except (EOFError, OSError):
            msg = ("quit", [])
        cmd = msg[0]
        try:
            if cmd == "spawn":
                fd = _high_fd(_recv_fd(ctl))
                _, uid, gid, groups, caps = msg
                pid = os.fork()
                if pid == 0:
                    _spawned_child(me, socket.socket(fileno=fd), ctl, ring, uid, gid, groups, caps)
                os.close(fd)
                _send(ctl, pid)
            elif cmd == "read":
                with open(msg[1], "rb") as f:
                    _send(ctl, f.read())
            elif cmd == "write":
                fd = os.open(msg[1], os.O_WRONLY)
                try:
                    os.write(fd, msg[2])
                finally:
                    os.close(fd)
                _send(ctl, None)
            elif cmd == "reap":
                try:
                    os.waitpid(msg[1], 0)
                except ChildProcessError:
                    pass
                _send(ctl, None)
            elif cmd == "quit":
                for pid in msg[1]:
                    try:
                        os.kill(pid, SIGKILL)
                    except OSError:
                        pass
                # Reap children and orphans handed to us as subreaper, for a bounded time.
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline:
                    try:
                        pid, _ = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        time.sleep(0.002)
                return
            else:
                _send(ctl, ("error", f"unknown command {cmd!r}"))
        except OSError as e:
            _send(ctl, ("oserror", e.errno or 0, str(e)))


# ===========================================================================================================
# The pytest worker side.
# ===========================================================================================================

class _Channel:
    """The worker's end of one command socket."""

    def __init__(self, sock: socket.socket, what: str) -> None:
        self.sock = sock
        self.what = what
        self.mu = threading.Lock()
        sock.settimeout(_CONTROL_TIMEOUT)

    def call(self, msg: Any, fd: int | None = None, timeout: float = _CONTROL_TIMEOUT) -> Any:
        # One thread runs one syscall at a time: a second caller waits a bounded time, then fails.
        if not self.mu.acquire(timeout=_BUSY_TIMEOUT):
            raise NativeChildError(f"{self.what} is still busy with another request; cannot run {msg[0]!r}")
        try:
            try:
                if self.sock.gettimeout() != timeout:
                    self.sock.settimeout(timeout)
                _send(self.sock, msg, fd)
                reply = _recv(self.sock)
            except EOFError:
                raise NativeChildError(f"{self.what} died (channel closed) during {msg[0]!r}") from None
            except TimeoutError:
                raise NativeChildError(f"{self.what} did not answer {msg!r} within {timeout}s") from None
            except OSError as e:
                raise NativeChildError(f"{self.what}: channel error during {msg[0]!r}: {e}") from None
        finally:
            self.mu.release()
        if isinstance(reply, tuple) and reply and reply[0] == "error":
            raise NativeChildError(f"{self.what} failed {msg[0]!r}:\n{reply[1]}")
        return reply

    def hello(self) -> tuple[int, int, int, int, _Channel | None]:
        """The first message of a new thread: pid, tid, reserve, status word, memory-thread channel."""
        try:
            reply = _recv(self.sock)
            memchan = None
            if reply[0] == "hello" and reply[5]:
                memchan = _Channel(socket.socket(fileno=_recv_fd(self.sock)), f"the memory thread of {self.what}")
        except (EOFError, OSError) as e:
            raise NativeChildError(f"{self.what} died before it started: {e!r}") from None
        if reply[0] != "hello":
            raise NativeChildError(f"{self.what} failed to start:\n{reply[1]}")
        return reply[1], reply[2], reply[3], reply[4], memchan

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _thread_state(pid: int, tid: int) -> str | None:
    """The state letter of /proc/<pid>/task/<tid>/stat, or None if the thread is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    i = stat.rfind(b")")
    return chr(stat[i + 2]) if i >= 0 and len(stat) > i + 2 else None


class _NativeProcess:
    """Worker-side record of one test process (``target.mu`` guards ``tasks`` and ``alive``)."""

    def __init__(self, target: NativeTarget, pid: int, parent: _NativeProcess | None) -> None:
        self.target = target
        self.pid = pid
        self.parent = parent
        self.tasks: list[NativeTask] = []
        self.alive = True
        #: Base of the process's reserve (see RESERVE_SLOTS) and the next free slot (guarded by _mem_mu).
        self.reserve = 0
        self.reserve_next = 0
        self._mem: int | None = None
        self._mem_mu = threading.Lock()
        #: The channel of the process's memory thread, where the kernel lacks cross-process memory
        #: writes (testsuite.targets.native_portable); None otherwise.
        self.mem_chan: _Channel | None = None

    def mem_call(self, msg: Any) -> Any:
        """A request to the memory thread; its OSError-like replies become NativeChildError."""
        assert self.mem_chan is not None
        reply = self.mem_chan.call(msg)
        if isinstance(reply, tuple) and reply and reply[0] == "oserror":
            raise NativeChildError(f"process {self.pid}: {reply[2]}: {os.strerror(reply[1])}")
        return reply

    def mem(self) -> int:
        with self._mem_mu:
            if self._mem is None:
                try:
                    self._mem = os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
                except OSError as e:
                    raise NativeChildError(f"process {self.pid}: cannot open its memory: {e}") from None
            return self._mem

    def take_reserve(self, n: int) -> int:
        with self._mem_mu:
            if n > _PAGE or not self.reserve or self.reserve_next >= RESERVE_SLOTS:
                raise NativeChildError(
                    f"process {self.pid}: cannot map {n} bytes while every thread sleeps in a syscall "
                    f"(reserve: {RESERVE_SLOTS - self.reserve_next} pages left); allocate before blocking")
            addr = self.reserve + 2 * _PAGE * self.reserve_next
            self.reserve_next += 1
            return addr

    def close_mem(self) -> None:
        with self._mem_mu:
            if self._mem is not None:
                os.close(self._mem)
                self._mem = None
            if self.mem_chan is not None:
                self.mem_chan.close()


class NativeTask(TaskHandle):
    """One thread of a test process on the host kernel."""

    target: NativeTarget

    def __init__(self, target: NativeTarget, proc: _NativeProcess, chan: _Channel, pid: int, tid: int,
                 status_addr: int) -> None:
        self.target = target
        #: Where the serving thread publishes the syscall number it is issuing (see _serve).
        self.status_addr = status_addr
        self.proc = proc
        self.chan = chan
        self.pid = pid
        self.tid = tid
        self.exited = False
        #: The syscall number in flight on this channel, or None (read by is_blocked).
        self._inflight: int | None = None

    def __repr__(self) -> str:
        return f"<NativeTask pid={self.pid} tid={self.tid}>"

    def _check(self) -> None:
        if self.exited:
            raise NativeChildError(f"{self!r} has exited")

    # -- syscalls ------------------------------------------------------------------------------------------
    def syscall(self, nr: int, *args: int) -> int:
        self._check()
        if len(args) > 6:
            raise ValueError("at most 6 syscall arguments")
        self._inflight = nr
        try:
            return self.chan.call(("s", nr, args), timeout=_SYSCALL_TIMEOUT)
        finally:
            self._inflight = None

    def is_blocked(self) -> bool:
        nr = self._inflight
        if nr is None:
            return False
        base = f"/proc/{self.pid}/task/{self.tid}"
        try:
            with open(base + "/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return False
        i = stat.rfind(b")")
        if i < 0 or stat[i + 2:i + 3] != b"S":
            return False
        if not portable.use_stub():
            try:
                with open(base + "/syscall", "rb") as f:
                    sysline = f.read()
            except OSError:
                return False
            first = sysline.split(b" ", 1)[0].strip()
            if first != str(nr).encode():
                return False
        # Without the syscall file the word alone is exact: the stub publishes it without the GIL,
        # so "S" with the word set is the sleep inside the syscall, not a wait for the GIL.
        try:
            issuing = struct.unpack("<q", self.read(self.status_addr, 8))[0]
        except (OSError, struct.error, NativeChildError):
            return False
        return issuing == nr and self._inflight == nr

    # -- memory --------------------------------------------------------------------------------------------
    def alloc(self, n: int) -> int:
        self._check()
        chan = self.chan
        if self._inflight is not None:
            # This thread sleeps in a syscall; any idle thread of the process can map memory, and when
            # none is idle a page comes from the reserve mapped at process start.
            idle = [t for t in self.proc.tasks if not t.exited and t._inflight is None]
            if idle:
                chan = idle[0].chan
            else:
                return self.proc.take_reserve(n)
        return chan.call(("alloc", n))

    def read(self, addr: int, n: int) -> bytes:
        if n == 0:
            return b""
        if self.proc.mem_chan is not None and not portable.features().mem_read:
            return bytes(self.proc.mem_call(("r", addr, n)))
        try:
            data = os.pread(self.proc.mem(), n, addr)
        except OSError as e:
            raise NativeChildError(f"{self!r}: cannot read {n} bytes at {addr:#x}: {e}") from None
        if len(data) != n:
            raise NativeChildError(f"{self!r}: short read at {addr:#x} ({len(data)} of {n})")
        return data

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        if self.proc.mem_chan is not None:
            self.proc.mem_call(("w", addr, bytes(data)))
            return
        try:
            done = os.pwrite(self.proc.mem(), data, addr)
        except OSError as e:
            raise NativeChildError(f"{self!r}: cannot write {len(data)} bytes at {addr:#x}: {e}") from None
        if done != len(data):
            raise NativeChildError(f"{self!r}: short write at {addr:#x}")

    # -- processes and threads -----------------------------------------------------------------------------
    def fork(self) -> NativeTask:
        self._check()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = self.chan.call(("fork",), fd=theirs.fileno())
        finally:
            theirs.close()
        proc = _NativeProcess(self.target, pid, self.proc)
        self.target._add_process(proc)
        return self.target._attach(proc, mine, f"process {pid}")

    def thread(self) -> NativeTask:
        self._check()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.chan.call(("thread",), fd=theirs.fileno())
        finally:
            theirs.close()
        return self.target._attach(self.proc, mine, f"a thread of process {self.pid}")

    def exit(self) -> None:
        if self.exited:
            return
        self.chan.call(("exit",))
        self.exited = True
        self.chan.close()
        proc = self.proc
        with self.target.mu:
            last = all(t.exited for t in proc.tasks)
        # Return only once the thread is really gone (exit(2) has completed from the caller's view).
        deadline = time.monotonic() + _CONTROL_TIMEOUT
        while True:
            st = _thread_state(self.pid, self.tid)
            if st is None or st in "ZX":
                break
            if time.monotonic() > deadline:
                raise NativeChildError(f"{self!r} did not exit")
            time.sleep(0.0005)
        if last:
            self.target._process_ended(proc)

    # -- signals ---------------------------------------------------------------------------------------------
    def deliveries(self) -> list[Delivery]:
        ring = self.target.ring_addr
        raw = self.read(ring, 8)
        count = min(struct.unpack("<Q", raw)[0], RING_ENTRIES)
        if not count:
            return []
        data = self.read(ring + _RING_HDR, count * SIGINFO.size)
        out = []
        for i in range(count):
            signo, _errno, code, pid, uid, value = SIGINFO.unpack(data[i * 128:(i + 1) * 128])
            if signo == 0:
                break  # a handler is still writing this slot
            out.append(Delivery(signo, code, pid, uid, value))
        return out


@functools.cache
def unavailable_reason() -> str | None:
    """Why the native target cannot run here, or None."""
    if platform.system() != "Linux":
        return "not Linux"
    if platform.machine() != "x86_64":
        return f"not x86_64 ({platform.machine()}): the signal-recording stub is x86-64 code"
    if os.geteuid() != 0:
        return "not root"
    # What else is missing has a portable fallback (native_portable).
    if not portable.features().unshare:
        return "cannot unshare(CLONE_NEWIPC | CLONE_NEWNS)"
    return None


class NativeTarget(Target):
    """One test's world on the host kernel: a zygote in fresh IPC and mount namespaces.

    ``mu`` guards ``_procs`` and each process record's ``tasks``; the rest is set once in __init__.
    """

    name = "native"
    arch = "amd64"
    bad_addr = 0x8

    def __init__(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(f"native target unavailable: {reason}")
        self.mu = threading.Lock()
        self._procs: list[_NativeProcess] = []
        self._closed = False
        self.scratch_dir = tempfile.mkdtemp(prefix="mqsentry-native-")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        worker = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                # The worker's heap came along, with garbage cycles that may hold file objects of
                # the worker; collecting them here would close descriptor numbers that a test's
                # process has reused. Nothing in the zygote or its children needs the cycle collector.
                gc.disable()
                mine.close()
                _zygote_main(theirs, worker)
            finally:
                os._exit(1)
        theirs.close()
        self.zygote_pid = pid
        self._ctl = _Channel(mine, f"native zygote {pid}")
        try:
            reply = _recv(mine)
        except (TimeoutError, EOFError, OSError) as e:
            self._reap_zygote()
            raise NativeChildError(f"native zygote failed to start: {e!r}") from None
        if reply[0] != "ready":
            self._reap_zygote()
            raise NativeChildError(f"native zygote failed to start:\n{reply[1]}")
        _, self.handler_addr, self.restorer_addr, self.ring_addr = reply

    # -- processes -----------------------------------------------------------------------------------------
    def spawn(self, uid: int = 0, gid: int = 0, groups: tuple[int, ...] = (), caps: int | None = None) -> NativeTask:
        if self._closed:
            raise NativeChildError("target is closed")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = self._control(("spawn", uid, gid, tuple(groups), caps), fd=theirs.fileno())
        finally:
            theirs.close()
        proc = _NativeProcess(self, pid, None)
        self._add_process(proc)
        return self._attach(proc, mine, f"process {pid}")

    def _add_process(self, proc: _NativeProcess) -> None:
        with self.mu:
            self._procs.append(proc)

    def _attach(self, proc: _NativeProcess, sock: socket.socket, what: str) -> NativeTask:
        chan = _Channel(sock, what)
        pid, tid, reserve, status_addr, memchan = chan.hello()
        task = NativeTask(self, proc, chan, pid, tid, status_addr)
        with self.mu:
            if memchan is not None:
                proc.mem_chan = memchan
            if reserve:
                proc.reserve = reserve
            proc.tasks.append(task)
        return task

    def _process_ended(self, proc: _NativeProcess) -> None:
        """The last thread of ``proc`` exited: have its parent reap it, as a shell's wait would."""
        proc.alive = False
        proc.close_mem()
        if proc.parent is None:
            self._control(("reap", proc.pid))
            return
        idle = [t for t in proc.parent.tasks if not t.exited and t._inflight is None]
        if idle:
            try:
                idle[0].chan.call(("reap", proc.pid))
            except NativeChildError:
                pass

    def _control(self, msg: Any, fd: int | None = None) -> Any:
        reply = self._ctl.call(msg, fd=fd)
        if isinstance(reply, tuple) and reply and reply[0] == "oserror":
            from mqsentry.testsuite.libc.errors import LinuxError

            raise LinuxError(reply[1], f"{msg[0]} {msg[1] if len(msg) > 1 else ''}: {reply[2]}")
        return reply

    # -- files -------------------------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        return self._control(("read", path))

    def write_file(self, path: str, data: bytes) -> None:
        self._control(("write", path, bytes(data)))

    # -- teardown ----------------------------------------------------------------------------------------
    def _reap_zygote(self) -> None:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                pid, _ = os.waitpid(self.zygote_pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                return
            if time.monotonic() > deadline:
                try:
                    os.kill(self.zygote_pid, SIGKILL)
                except OSError:
                    pass
                deadline = time.monotonic() + 10.0
            time.sleep(0.001)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.mu:
            procs = list(self._procs)
        pids = [p.pid for p in procs if p.alive]
        # Kill from here too: a stopped or blocked process must not outlive its test.
        for pid in pids:
            try:
                os.kill(pid, SIGKILL)
            except OSError:
                pass
        try:
            _send(self._ctl.sock, ("quit", pids))
        except OSError:
            pass
        self._reap_zygote()
        self._ctl.close()
        for p in procs:
            p.close_mem()
            for t in p.tasks:
                t.chan.close()
        shutil.rmtree(self.scratch_dir, ignore_errors=True)


__all__ = ["NativeTarget", "NativeTask", "NativeChildError", "unavailable_reason"]
