"""The target-neutral core of the libc layer: raw syscalls by name, scratch memory, identity and
signal wrappers. IPC wrappers live in ``sysv.py`` and ``posix.py`` and are mixed into :class:`Proc`."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Self

from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.capability import CAP_DATA, LINUX_CAPABILITY_VERSION_3
from mqsentry.abi.linux.signal import SA_RESTORER, SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, SIGACTION, SIGSET_SIZE, sigmask
from mqsentry.abi.linux.time import TIMESPEC
from mqsentry.testsuite.libc.errors import LinuxError
from mqsentry.testsuite.targets.base import Delivery, TaskHandle

if TYPE_CHECKING:
    from mqsentry.testsuite.targets.base import Target


class ProcCore:
    """A thread of a process in a target, with C-library-like helpers.

    Methods raise :class:`LinuxError` on failure and return the syscall's value otherwise.
    ``sys(name, *args)`` is the raw escape hatch (returns -errno instead of raising).
    """

    def __init__(self, handle: TaskHandle) -> None:
        self.h = handle
        self.target: Target = handle.target
        self._nr = sysno.NUMBERS[handle.target.arch]
        self._scratch: list[tuple[int, int]] = []

    # -- raw -------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.h.pid

    @property
    def tid(self) -> int:
        return self.h.tid

    def nr(self, name: str) -> int:
        return self._nr[name]

    def sys(self, name: str, *args: int) -> int:
        """Raw syscall by name: result or -errno."""
        return self.h.syscall(self._nr[name], *args)

    def call(self, name: str, *args: int) -> int:
        """Syscall by name; raises LinuxError on failure."""
        ret = self.h.syscall(self._nr[name], *args)
        if ret < 0:
            raise LinuxError(-ret, name)
        return ret

    # -- memory ------------------------------------------------------------------------------------------
    def alloc(self, n: int) -> int:
        return self.h.alloc(n)

    def buf(self, data: bytes, size: int | None = None) -> int:
        """Place ``data`` in fresh memory (``size`` bytes, default len(data)) and return its address."""
        size = len(data) if size is None else size
        addr = self.h.alloc(max(size, 1))
        if data:
            self.h.write(addr, data)
        return addr

    def read(self, addr: int, n: int) -> bytes:
        return self.h.read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        self.h.write(addr, data)

    def cstr(self, s: str | bytes) -> int:
        b = s.encode() if isinstance(s, str) else s
        return self.buf(b + b"\0")

    def end_of_mapping(self, n: int) -> int:
        """An address whose first byte is mapped but whose ``n``-th byte is not (a buffer that runs
        into the guard page)."""
        addr = self.h.alloc(4096)
        return addr + 4096 - n + 1

    # -- processes -----------------------------------------------------------------------------------------
    def fork(self) -> Self:
        return type(self)(self.h.fork())

    def thread(self) -> Self:
        return type(self)(self.h.thread())

    def is_blocked(self) -> bool:
        return self.h.is_blocked()

    def exit(self) -> None:
        self.h.exit()

    # -- identity --------------------------------------------------------------------------------------------
    def getpid(self) -> int:
        return self.call("getpid")

    def gettid(self) -> int:
        return self.call("gettid")

    def getuid(self) -> int:
        return self.call("getuid")

    def geteuid(self) -> int:
        return self.call("geteuid")

    def getgid(self) -> int:
        return self.call("getgid")

    def getegid(self) -> int:
        return self.call("getegid")

    def setresuid(self, r: int, e: int, s: int) -> None:
        self.call("setresuid", r & 0xFFFFFFFF, e & 0xFFFFFFFF, s & 0xFFFFFFFF)

    def setresgid(self, r: int, e: int, s: int) -> None:
        self.call("setresgid", r & 0xFFFFFFFF, e & 0xFFFFFFFF, s & 0xFFFFFFFF)

    def setgroups(self, groups: list[int] | tuple[int, ...]) -> None:
        p = self.buf(struct.pack(f"<{len(groups)}I", *groups), max(4, 4 * len(groups)))
        self.call("setgroups", len(groups), p)

    def capget(self) -> tuple[int, int, int]:
        """(effective, permitted, inheritable) of this thread."""
        hdr = self.buf(struct.pack("<Ii", LINUX_CAPABILITY_VERSION_3, 0))
        data = self.alloc(2 * CAP_DATA.size)
        self.call("capget", hdr, data)
        raw = self.read(data, 2 * CAP_DATA.size)
        lo, hi = CAP_DATA.unpack_from(raw, 0), CAP_DATA.unpack_from(raw, CAP_DATA.size)
        return tuple(lo[i] | hi[i] << 32 for i in range(3))

    def capset(self, effective: int, permitted: int, inheritable: int = 0) -> None:
        hdr = self.buf(struct.pack("<Ii", LINUX_CAPABILITY_VERSION_3, 0))
        data = self.buf(CAP_DATA.pack(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF)
                        + CAP_DATA.pack(effective >> 32, permitted >> 32, inheritable >> 32))
        self.call("capset", hdr, data)

    def drop_cap(self, cap: int) -> None:
        """Remove ``cap`` from this thread's effective set (like gVisor's AutoCapability(cap, false))."""
        e, p, i = self.capget()
        self.capset(e & ~(1 << cap), p, i)

    def unshare(self, flags: int) -> None:
        self.call("unshare", flags)

    # -- time --------------------------------------------------------------------------------------------------
    def clock_gettime(self, clock: int = 0) -> tuple[int, int]:
        p = self.alloc(16)
        self.call("clock_gettime", clock, p)
        return TIMESPEC.unpack(self.read(p, 16))

    def realtime(self) -> float:
        s, ns = self.clock_gettime(0)
        return s + ns / 1e9

    # -- signals ------------------------------------------------------------------------------------------------
    def sigaction(self, sig: int, handler: int | None = None, flags: int = 0, mask: int = 0) -> tuple[int, int, int]:
        """Install ``handler`` (default: the target's recording stub) for ``sig``; returns the old
        (handler, flags, mask). Use handler=0 for SIG_DFL and 1 for SIG_IGN."""
        h = self.target.handler_addr if handler is None else handler
        act = self.buf(SIGACTION.pack(h, flags | SA_RESTORER, self.target.restorer_addr, mask))
        old = self.alloc(SIGACTION.size)
        self.call("rt_sigaction", sig, act, old, SIGSET_SIZE)
        oh, of, _, om = SIGACTION.unpack(self.read(old, SIGACTION.size))
        return oh, of, om

    def sigprocmask(self, how: int, sigs: list[int] | tuple[int, ...] = ()) -> int:
        """Change this thread's mask; returns the old mask."""
        mask = 0
        for s in sigs:
            mask |= sigmask(s)
        new = self.buf(struct.pack("<Q", mask))
        old = self.alloc(8)
        self.call("rt_sigprocmask", how, new, old, SIGSET_SIZE)
        return struct.unpack("<Q", self.read(old, 8))[0]

    def block_signals(self, *sigs: int) -> int:
        return self.sigprocmask(SIG_BLOCK, sigs)

    def unblock_signals(self, *sigs: int) -> int:
        return self.sigprocmask(SIG_UNBLOCK, sigs)

    def set_sigmask(self, *sigs: int) -> int:
        return self.sigprocmask(SIG_SETMASK, sigs)

    def kill(self, pid: int, sig: int) -> None:
        self.call("kill", pid, sig)

    def tgkill(self, tgid: int, tid: int, sig: int) -> None:
        self.call("tgkill", tgid, tid, sig)

    def deliveries(self) -> list[Delivery]:
        """Signals delivered to the recording handler in this process, in order."""
        return self.h.deliveries()

    # -- files -------------------------------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        return self.target.read_file(path)
