"""Time syscalls: clock_gettime, gettimeofday, time.

Linux counterpart: kernel/time/posix-timers.c, kernel/time/time.c. gVisor counterpart:
pkg/sentry/syscalls/linux/sys_time.go. Guests need these to compute the absolute CLOCK_REALTIME
deadlines of mq_timedsend/mq_timedreceive against the sentry's (possibly manual) clock.
"""

from __future__ import annotations

import struct

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.abi.linux.time import (
    CLOCK_BOOTTIME,
    CLOCK_MONOTONIC,
    CLOCK_MONOTONIC_COARSE,
    CLOCK_MONOTONIC_RAW,
    CLOCK_REALTIME,
    CLOCK_REALTIME_COARSE,
    TIMESPEC,
)
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux.args import int32
from mqsentry.syscalls.linux.table import Syscall

_REALTIME = (CLOCK_REALTIME, CLOCK_REALTIME_COARSE)
_MONOTONIC = (CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME)


def clock_gettime(t: Task, which: int, tp: int, *_: int) -> int:
    clk = int32(which)
    if clk in _REALTIME:
        ns = t.kernel.clock.now_ns()
    elif clk in _MONOTONIC:
        ns = t.kernel.clock.monotonic_ns()
    else:
        raise SysError(EINVAL)
    t.copy_out(tp, TIMESPEC.pack(ns // 1_000_000_000, ns % 1_000_000_000))
    return 0


def gettimeofday(t: Task, tv: int, tz: int, *_: int) -> int:
    ns = t.kernel.clock.now_ns()
    if tv:
        t.copy_out(tv, struct.pack("<qq", ns // 1_000_000_000, (ns // 1000) % 1_000_000))
    if tz:
        t.copy_out(tz, b"\0" * 8)
    return 0


def time_(t: Task, tloc: int, *_: int) -> int:
    s = t.kernel.clock.now_s()
    if tloc:
        t.copy_out(tloc, struct.pack("<q", s))
    return s


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("clock_gettime", clock_gettime), Syscall("gettimeofday", gettimeofday), Syscall("time", time_),
)}
