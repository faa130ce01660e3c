"""clock_gettime: the realtime clock agrees with the host's, and invalid clocks or pointers fail.

Linux counterpart: kernel/time/posix-timers.c (``clock_gettime``, ``clockid_to_kclock``). gVisor
counterpart: test/syscalls/linux/clock_gettime.cc (ideas only).
"""

from __future__ import annotations

import struct
import time

import pytest

from mqsentry.abi.linux.errno import EFAULT, EINVAL
from mqsentry.abi.linux.time import CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_REALTIME_COARSE
from mqsentry.testsuite.libc import Proc, expect_errno


@pytest.mark.parametrize("clock", [CLOCK_REALTIME, CLOCK_REALTIME_COARSE])
def test_realtime_is_close_to_host_time(proc: Proc, clock: int) -> None:
    before = time.time()
    s, ns = proc.clock_gettime(clock)
    after = time.time()
    assert 0 <= ns < 1_000_000_000
    # The coarse clock may lag by a tick; allow a little slack either side.
    assert before - 0.05 <= s + ns / 1e9 <= after + 0.05


def test_monotonic_does_not_go_back(proc: Proc) -> None:
    a = proc.clock_gettime(CLOCK_MONOTONIC)
    b = proc.clock_gettime(CLOCK_MONOTONIC)
    assert b >= a


@pytest.mark.parametrize("clock", [10, 16, 1000, 0x7FFF_FFFF])
def test_invalid_clock_is_einval(proc: Proc, clock: int) -> None:
    # 10 was CLOCK_SGI_CYCLE (never implemented); 16 is MAX_CLOCKS.
    with expect_errno(EINVAL):
        proc.call("clock_gettime", clock, proc.alloc(16))


def test_bad_pointer_is_efault(proc: Proc) -> None:
    with expect_errno(EFAULT):
        proc.call("clock_gettime", CLOCK_REALTIME, proc.target.bad_addr)
    with expect_errno(EFAULT):
        proc.call("clock_gettime", CLOCK_REALTIME, proc.end_of_mapping(16))


def test_gettimeofday_and_time_agree_with_host(proc: Proc) -> None:
    tv = proc.alloc(16)
    before = time.time()
    assert proc.call("gettimeofday", tv, 0) == 0
    t = proc.call("time", 0)
    after = time.time()
    sec, usec = struct.unpack("<qq", proc.read(tv, 16))
    assert 0 <= usec < 1_000_000
    assert before - 0.01 <= sec + usec / 1e6 <= after + 0.01
    assert int(before) - 1 <= t <= int(after) + 1
    loc = proc.alloc(8)
    t2 = proc.call("time", loc)
    assert struct.unpack("<q", proc.read(loc, 8))[0] == t2
    with expect_errno(EFAULT):
        proc.call("gettimeofday", proc.target.bad_addr, 0)
    with expect_errno(EFAULT):
        proc.call("time", proc.target.bad_addr)
