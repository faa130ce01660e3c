"""Unit tests of the platform's pure parts: the BPF filter and the signal rule.

Linux counterpart: kernel/seccomp.c's filter semantics (classic BPF on ``struct seccomp_data``) and
kernel/signal.c ``complete_signal``. gVisor counterpart: pkg/seccomp's program tests.
"""

from __future__ import annotations

import struct

from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.platform import procfs, seccomp
from mqsentry.kernel.platform.calls import OBSERVED, OBSERVED_I386, SERVED, SERVED_I386

I386 = 0x4000_0003


def run_bpf(code: bytes, nr: int, arch: int = seccomp.AUDIT_ARCH_X86_64) -> int:
    """A classic-BPF interpreter for the few opcodes the builder emits."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *([0] * 6))
    prog = [struct.unpack_from("=HBBI", code, i) for i in range(0, len(code), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = prog[pc]
        if op == seccomp.BPF_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
        elif op == seccomp.BPF_RET_K:
            return k
        elif op == seccomp.BPF_JEQ_K:
            pc += jt if acc == k else jf
        elif op == seccomp.BPF_JGE_K:
            pc += jt if acc >= k else jf
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
        pc += 1


def test_filter_routes_syscalls() -> None:
    code = seccomp.encode_filter(seccomp.build_filter(SERVED, OBSERVED))
    for nr in (*SERVED, *OBSERVED):
        assert run_bpf(code, nr) == seccomp.SECCOMP_RET_USER_NOTIF
    for nr in (0, 1, 39, 67, 72, 239, 246, 317, 435):
        assert run_bpf(code, nr) == seccomp.SECCOMP_RET_ALLOW
    assert run_bpf(code, 68 | seccomp.X32_SYSCALL_BIT) == seccomp.SECCOMP_RET_ERRNO | seccomp.ENOSYS
    assert run_bpf(code, 68, arch=I386) == seccomp.SECCOMP_RET_KILL_PROCESS
    assert run_bpf(code, 68, arch=0xC000_00B7) == seccomp.SECCOMP_RET_KILL_PROCESS  # aarch64


def test_filter_routes_i386_syscalls_by_their_own_numbers() -> None:
    code = seccomp.encode_filter(seccomp.build_filter(SERVED, OBSERVED, SERVED_I386, OBSERVED_I386))
    for nr in (*SERVED_I386, *OBSERVED_I386):
        assert run_bpf(code, nr, arch=I386) == seccomp.SECCOMP_RET_USER_NOTIF
    for nr in (0, 1, 3, 4, 20, 68, 240, 283, 398, 403):  # i386 read, write, getpid, ...; x86_64's numbers
        assert run_bpf(code, nr, arch=I386) == seccomp.SECCOMP_RET_ALLOW
    for nr in (*SERVED, *OBSERVED):
        assert run_bpf(code, nr) == seccomp.SECCOMP_RET_USER_NOTIF
    assert run_bpf(code, 117) == seccomp.SECCOMP_RET_USER_NOTIF  # x86_64 setresuid, not i386 ipc
    assert run_bpf(code, 68 | seccomp.X32_SYSCALL_BIT) == seccomp.SECCOMP_RET_ERRNO | seccomp.ENOSYS
    assert run_bpf(code, 68, arch=0xC000_00B7) == seccomp.SECCOMP_RET_KILL_PROCESS


def _st(tid: int, pnd: int = 0, shd: int = 0, blk: int = 0, ign: int = 0, state: str = "S") -> procfs.ThreadStatus:
    return procfs.ThreadStatus(tid, 100, state, Credentials(), pnd, shd, blk, ign)


USR1 = 1 << 9  # bit of signal 10


def test_thread_directed_signal_interrupts_unless_blocked_or_ignored() -> None:
    assert procfs.should_interrupt(_st(100, pnd=USR1)) is True
    assert procfs.should_interrupt(_st(100, pnd=USR1, blk=USR1)) is False
    assert procfs.should_interrupt(_st(100, pnd=USR1, ign=USR1)) is False
    assert procfs.should_interrupt(_st(100)) is False
    assert procfs.should_interrupt(_st(100, shd=USR1)) is None


def test_process_directed_signal_goes_where_complete_signal_sends_it() -> None:
    leader, a, b = _st(100), _st(101), _st(102)
    assert procfs.shared_signal_target(100, USR1, {100: leader, 101: a, 102: b}) == {100}
    blocked = _st(100, blk=USR1)
    assert procfs.shared_signal_target(100, USR1, {100: blocked, 101: a, 102: _st(102, blk=USR1)}) == {101}
    # Two candidates besides a blocking leader: the kernel's choice is unknowable; nobody.
    assert procfs.shared_signal_target(100, USR1, {100: blocked, 101: a, 102: b}) == set()
    zombie = _st(100, state="Z")
    assert procfs.shared_signal_target(100, USR1, {100: zombie, 101: a}) == {101}


def test_read_status_of_self() -> None:
    import os

    st = procfs.read_status(os.getpid())
    assert st is not None and st.tgid == os.getpid()
    assert st.creds.euid == os.geteuid() and st.creds.egid == os.getegid()
    assert procfs.read_status(0x3FFF_FFFF) is None
