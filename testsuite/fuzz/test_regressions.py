"""Regressions for bugs ``mqsentry fuzz`` found (sentry-only: they pin the sentry's own contracts).

Linux-behaviour bugs get their regression test in the relevant conformance suite instead, where it
runs on both targets.
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.errno import EFAULT
from mqsentry.boot import Kernel
from mqsentry.tools.fuzz import WatchedAddressSpace

#: Largest guest-memory access any call may request here (kernel/memory.py: the sentry never asks an
#: adapter for more than the syscall's own limits allow; write(2) has none, so it must copy in chunks).
ACCESS_BOUND = 1 << 20


def _task() -> object:
    k = Kernel()
    return k.new_task(uid=0, gid=0, mm=WatchedAddressSpace())


@pytest.mark.parametrize("call", ["write", "pwrite64"])
def test_write_with_hostile_count_does_not_request_it_all(call: str) -> None:
    """Found by the fuzzer: write(2) copied the whole count (up to MAX_RW_COUNT) in one request."""
    t = _task()
    k = t.kernel  # type: ignore[attr-defined]
    nr = k.syscall_table.number
    path = t.mm.alloc(4096)  # type: ignore[attr-defined]
    t.mm.write(path, b"/tmp/fuzz-write\0")  # type: ignore[attr-defined]
    fd = t.syscall(nr("open"), path, 0o102, 0o600)  # type: ignore[attr-defined]  # O_RDWR|O_CREAT
    assert fd >= 0
    t.mm.largest = 0  # type: ignore[attr-defined]
    # A buffer pointer into unmapped low memory and a 256 MiB count: Linux gives EFAULT at the first page.
    ret = t.syscall(nr(call), fd, 17, 0x1000_0000, 0, 0, 0)  # type: ignore[attr-defined]
    assert ret == -EFAULT
    assert t.mm.largest <= ACCESS_BOUND, f"asked guest memory for {t.mm.largest} bytes"  # type: ignore[attr-defined]
