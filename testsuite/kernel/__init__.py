"""Kernel-level conformance tests: syscall dispatch, credentials, signals, unshare and clocks.

Linux counterpart: kernel/sys.c, kernel/capability.c, kernel/signal.c, kernel/fork.c (unshare),
kernel/time/posix-timers.c. gVisor counterpart: test/syscalls/linux/{uidgid,capabilities,sigaction,
sigprocmask,kill,tgkill,sigstop,clock_gettime}.cc (rewritten here, not copied).

Helpers shared by the modules of this package live here; each drives a :class:`Proc` with raw
syscalls only, so the same code runs against the sentry and the host kernel.
"""

from __future__ import annotations

import struct

from mqsentry.abi.linux.signal import SIGSET_SIZE, sigmask
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.base import Delivery
from mqsentry.testsuite.util import wait_until

#: A pid no process has: above every pid_max Linux allows (PID_MAX_LIMIT is 4194304).
NO_SUCH_PID = 0x3FFF_FFFF


def getresuid(p: Proc) -> tuple[int, int, int]:
    ptrs = [p.alloc(4) for _ in range(3)]
    p.call("getresuid", *ptrs)
    return tuple(struct.unpack("<I", p.read(a, 4))[0] for a in ptrs)


def getresgid(p: Proc) -> tuple[int, int, int]:
    ptrs = [p.alloc(4) for _ in range(3)]
    p.call("getresgid", *ptrs)
    return tuple(struct.unpack("<I", p.read(a, 4))[0] for a in ptrs)


def getgroups(p: Proc) -> list[int]:
    n = p.call("getgroups", 0, 0)
    buf = p.alloc(max(4, 4 * n))
    got = p.call("getgroups", n, buf)
    return list(struct.unpack(f"<{got}I", p.read(buf, 4 * got)))


def sigpending(p: Proc) -> int:
    """The calling thread's pending-and-blocked set (rt_sigpending)."""
    buf = p.alloc(8)
    p.call("rt_sigpending", buf, SIGSET_SIZE)
    return struct.unpack("<Q", p.read(buf, 8))[0]


def sigset(*sigs: int) -> int:
    m = 0
    for s in sigs:
        m |= sigmask(s)
    return m


def wait_deliveries(p: Proc, n: int, poke: Proc | None = None) -> list[Delivery]:
    """Wait until ``p``'s process has recorded ``n`` deliveries.

    The sentry runs no guest code, so a signal meant for a thread idle "in user space" is taken when
    that thread next enters the kernel; ``poke`` makes that thread enter it (on Linux the signal has
    already interrupted it, and the extra getpid is harmless).
    """
    if poke is not None:
        poke.getpid()
    wait_until(lambda: len(p.deliveries()) >= n, what=f"{n} signal deliveries")
    return p.deliveries()
