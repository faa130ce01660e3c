"""Signals: rt_sigaction, rt_sigprocmask, rt_sigpending, kill, tgkill, and stop/continue.

Linux counterpart: kernel/signal.c (``do_sigaction``, ``sigprocmask``, ``do_sigpending``,
``kill_something_info``, ``do_send_specific``, ``check_kill_permission``, ``complete_signal``,
``prepare_signal``). gVisor counterpart: test/syscalls/linux/sigaction.cc, sigprocmask.cc, kill.cc,
tgkill.cc, sigstop.cc (ideas only).

Handlers are the target's recording stub (``SA_SIGINFO``); its deliveries carry the siginfo the
kernel built, so the tests check si_code, si_pid and si_uid exactly.
"""

from __future__ import annotations

import struct
import time

import pytest

from mqsentry.abi.linux.errno import EFAULT, EINVAL, EPERM, ESRCH
from mqsentry.abi.linux.signal import (
    SA_NODEFER,
    SA_ONSTACK,
    SA_RESETHAND,
    SA_RESTART,
    SA_RESTORER,
    SA_SIGINFO,
    SA_UNSUPPORTED,
    SI_TKILL,
    SI_USER,
    SIG_BLOCK,
    SIG_DFL,
    SIG_IGN,
    SIG_SETMASK,
    SIGACTION,
    SIGCONT,
    SIGKILL,
    SIGRTMIN,
    SIGSTOP,
    SIGTSTP,
    SIGUSR1,
    SIGUSR2,
)
from mqsentry.testsuite.kernel import NO_SUCH_PID, sigpending, sigset, wait_deliveries
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.targets.base import Target
from mqsentry.testsuite.util import background

SIGRT = SIGRTMIN + 8  # clear of the real-time signals glibc reserves (32..34)


def get_action(p: Proc, sig: int) -> tuple[int, int, int, int]:
    old = p.alloc(SIGACTION.size)
    p.call("rt_sigaction", sig, 0, old, 8)
    return SIGACTION.unpack(p.read(old, SIGACTION.size))


def get_mask(p: Proc) -> int:
    old = p.alloc(8)
    p.call("rt_sigprocmask", SIG_BLOCK, 0, old, 8)
    return struct.unpack("<Q", p.read(old, 8))[0]


# -- rt_sigaction ------------------------------------------------------------------------------------------

def test_sigaction_sigsetsize_must_be_8(proc: Proc) -> None:
    act = proc.buf(SIGACTION.pack(SIG_IGN, SA_RESTORER, proc.target.restorer_addr, 0))
    for size in (0, 4, 16):
        with expect_errno(EINVAL):
            proc.call("rt_sigaction", SIGUSR1, act, 0, size)
    # sigsetsize is checked before the act pointer is read.
    with expect_errno(EINVAL):
        proc.call("rt_sigaction", SIGUSR1, proc.target.bad_addr, 0, 4)


@pytest.mark.parametrize("sig", [0, 65, -1, 1 << 31])
def test_sigaction_bad_signal_numbers(proc: Proc, sig: int) -> None:
    with expect_errno(EINVAL):
        proc.call("rt_sigaction", sig & 0xFFFF_FFFF_FFFF_FFFF, 0, proc.alloc(32), 8)


def test_sigaction_signal_number_is_an_int(proc: Proc) -> None:
    # The upper half of the register is not part of the C int.
    proc.call("rt_sigaction", 1 << 32 | SIGUSR1, 0, proc.alloc(32), 8)


def test_sigaction_of_sigkill_and_sigstop(proc: Proc) -> None:
    act = proc.buf(SIGACTION.pack(SIG_IGN, SA_RESTORER, proc.target.restorer_addr, 0))
    for sig in (SIGKILL, SIGSTOP):
        with expect_errno(EINVAL):
            proc.call("rt_sigaction", sig, act, 0, 8)
        assert get_action(proc, sig) == (SIG_DFL, 0, 0, 0)  # reading them is fine


def test_sigaction_round_trip(proc: Proc) -> None:
    t = proc.target
    assert get_action(proc, SIGUSR1) == (SIG_DFL, 0, 0, 0)
    flags = SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_ONSTACK
    old = proc.sigaction(SIGUSR1, flags=flags, mask=sigset(SIGUSR2, SIGRT))
    assert old == (SIG_DFL, 0, 0)
    assert get_action(proc, SIGUSR1) == (t.handler_addr, flags | SA_RESTORER, t.restorer_addr,
                                          sigset(SIGUSR2, SIGRT))
    old = proc.sigaction(SIGUSR1, handler=SIG_IGN)
    assert old == (t.handler_addr, flags | SA_RESTORER, sigset(SIGUSR2, SIGRT))
    assert get_action(proc, SIGUSR2) == (SIG_DFL, 0, 0, 0)  # other signals untouched


def test_sigaction_strips_unknown_flags_and_unblockable_mask_bits(proc: Proc) -> None:
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO | SA_UNSUPPORTED | SA_RESETHAND,
                   mask=sigset(SIGKILL, SIGSTOP, SIGUSR2))
    _, flags, _, mask = get_action(proc, SIGUSR1)
    assert flags == SA_SIGINFO | SA_RESETHAND | SA_RESTORER
    assert mask == sigset(SIGUSR2)


def test_sigaction_faults(proc: Proc) -> None:
    t = proc.target
    with expect_errno(EFAULT):
        proc.call("rt_sigaction", SIGUSR1, t.bad_addr, 0, 8)
    act = proc.buf(SIGACTION.pack(SIG_IGN, SA_RESTORER, t.restorer_addr, 0))
    # A bad oact fails after the new action is installed.
    with expect_errno(EFAULT):
        proc.call("rt_sigaction", SIGUSR1, act, t.bad_addr, 8)
    assert get_action(proc, SIGUSR1)[0] == SIG_IGN


def test_actions_are_shared_by_threads_and_copied_by_fork(proc: Proc) -> None:
    th = proc.thread()
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    assert get_action(th, SIGUSR1)[0] == proc.target.handler_addr
    child = proc.fork()
    assert get_action(child, SIGUSR1)[0] == proc.target.handler_addr
    child.sigaction(SIGUSR1, handler=SIG_IGN)
    assert get_action(proc, SIGUSR1)[0] == proc.target.handler_addr


# -- rt_sigprocmask / rt_sigpending -------------------------------------------------------------------------------

def test_sigprocmask_how(proc: Proc) -> None:
    assert proc.block_signals(SIGUSR1) == 0
    assert proc.block_signals(SIGUSR2) == sigset(SIGUSR1)
    assert proc.unblock_signals(SIGUSR1) == sigset(SIGUSR1, SIGUSR2)
    assert proc.set_sigmask(SIGRT) == sigset(SIGUSR2)
    assert proc.set_sigmask() == sigset(SIGRT)
    assert get_mask(proc) == 0


def test_sigprocmask_errors(proc: Proc) -> None:
    new = proc.buf(struct.pack("<Q", sigset(SIGUSR1)))
    with expect_errno(EINVAL):
        proc.call("rt_sigprocmask", 3, new, 0, 8)
    with expect_errno(EINVAL):
        proc.call("rt_sigprocmask", -1 & 0xFFFFFFFF, new, 0, 8)
    assert get_mask(proc) == 0
    proc.call("rt_sigprocmask", 3, 0, proc.alloc(8), 8)  # without a new set, how is not looked at
    with expect_errno(EINVAL):
        proc.call("rt_sigprocmask", SIG_BLOCK, new, 0, 4)
    with expect_errno(EFAULT):
        proc.call("rt_sigprocmask", SIG_BLOCK, proc.target.bad_addr, 0, 8)
    with expect_errno(EFAULT):
        proc.call("rt_sigprocmask", SIG_BLOCK, new, proc.target.bad_addr, 8)
    assert get_mask(proc) == sigset(SIGUSR1)  # the mask changed before oset faulted


def test_sigkill_and_sigstop_cannot_be_blocked(proc: Proc) -> None:
    proc.sigprocmask(SIG_SETMASK, (SIGKILL, SIGSTOP, SIGUSR1))
    assert get_mask(proc) == sigset(SIGUSR1)


def test_mask_is_per_thread_and_inherited(proc: Proc) -> None:
    th = proc.thread()
    proc.block_signals(SIGUSR1)
    assert get_mask(th) == 0
    th2 = proc.thread()
    child = proc.fork()
    assert get_mask(th2) == sigset(SIGUSR1)
    assert get_mask(child) == sigset(SIGUSR1)


def test_sigpending_sizes(proc: Proc) -> None:
    with expect_errno(EINVAL):
        proc.call("rt_sigpending", proc.alloc(16), 16)
    proc.call("rt_sigpending", proc.alloc(8), 4)  # smaller sizes copy less
    with expect_errno(EFAULT):
        proc.call("rt_sigpending", proc.target.bad_addr, 8)


# -- kill / tgkill delivery -----------------------------------------------------------------------------------------

def test_kill_delivers_si_user_with_sender_pid_and_real_uid(target: Target) -> None:
    receiver = Proc(target.spawn())
    receiver.sigaction(SIGUSR1, flags=SA_SIGINFO)
    sender = Proc(target.spawn())
    sender.setresuid(4321, 0, 0)  # real uid differs from the effective one
    sender.kill(receiver.pid, SIGUSR1)
    [d] = wait_deliveries(receiver, 1, poke=receiver)
    assert (d.signo, d.code, d.pid, d.uid) == (SIGUSR1, SI_USER, sender.pid, 4321)


def test_kill_from_a_thread_reports_the_process_id(proc: Proc) -> None:
    proc.sigaction(SIGUSR2, flags=SA_SIGINFO)
    th = proc.thread()
    th.kill(proc.pid, SIGUSR2)
    [d] = wait_deliveries(proc, 1, poke=proc)
    assert (d.signo, d.code, d.pid, d.uid) == (SIGUSR2, SI_USER, proc.pid, 0)


def test_tgkill_delivers_si_tkill_to_that_thread(target: Target) -> None:
    receiver = Proc(target.spawn())
    th = receiver.thread()
    receiver.sigaction(SIGUSR1, flags=SA_SIGINFO)
    receiver.block_signals(SIGUSR1)  # only th can take it
    sender = Proc(target.spawn(uid=0, gid=0))
    sender.tgkill(receiver.pid, th.tid, SIGUSR1)
    [d] = wait_deliveries(receiver, 1, poke=th)
    assert (d.signo, d.code, d.pid, d.uid) == (SIGUSR1, SI_TKILL, sender.pid, 0)
    assert sigpending(receiver) == 0


def test_thread_directed_signal_to_a_blocking_thread_stays_with_it(proc: Proc) -> None:
    th = proc.thread()
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    proc.block_signals(SIGUSR1)
    th.tgkill(proc.pid, proc.tid, SIGUSR1)
    th.getpid()
    assert proc.deliveries() == []
    assert sigpending(proc) == sigset(SIGUSR1)
    assert sigpending(th) == 0  # th does not block it, and the signal is not th's
    proc.unblock_signals(SIGUSR1)
    [d] = wait_deliveries(proc, 1)
    assert d.code == SI_TKILL


def test_blocked_signal_stays_pending_until_unblocked(proc: Proc) -> None:
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    proc.block_signals(SIGUSR1)
    proc.kill(proc.pid, SIGUSR1)
    proc.kill(proc.pid, SIGUSR1)  # a standard signal is pending at most once
    assert sigpending(proc) == sigset(SIGUSR1)
    assert proc.deliveries() == []
    proc.unblock_signals(SIGUSR1)
    ds = wait_deliveries(proc, 1)
    proc.getpid()
    assert len(proc.deliveries()) == 1 and ds[0].signo == SIGUSR1
    assert sigpending(proc) == 0


def test_realtime_signals_queue_every_instance(proc: Proc) -> None:
    proc.sigaction(SIGRT, flags=SA_SIGINFO)
    proc.block_signals(SIGRT)
    for _ in range(3):
        proc.kill(proc.pid, SIGRT)
    assert sigpending(proc) == sigset(SIGRT)
    proc.unblock_signals(SIGRT)
    assert [d.signo for d in wait_deliveries(proc, 3)] == [SIGRT] * 3
    proc.getpid()
    assert len(proc.deliveries()) == 3


def test_handlers_of_signals_unblocked_together_run_last_set_up_first(proc: Proc) -> None:
    # Linux sets up a frame for every deliverable signal before returning to user space, lowest
    # number first, each frame blocking its own signal: SIGUSR2's frame, then one SIGRT frame. The
    # SIGRT handler runs first; its sigreturn unblocks SIGRT, so the next queued SIGRT gets a frame
    # and runs, and so on; SIGUSR2's handler, at the bottom of the stack, runs last.
    proc.sigaction(SIGRT, flags=SA_SIGINFO)
    proc.sigaction(SIGUSR2, flags=SA_SIGINFO)
    proc.block_signals(SIGRT, SIGUSR2)
    for _ in range(3):
        proc.kill(proc.pid, SIGRT)
    proc.kill(proc.pid, SIGUSR2)
    assert sigpending(proc) == sigset(SIGRT, SIGUSR2)
    proc.unblock_signals(SIGRT, SIGUSR2)
    assert [d.signo for d in wait_deliveries(proc, 4)] == [SIGRT, SIGRT, SIGRT, SIGUSR2]
    assert get_mask(proc) == 0


def test_handler_sa_mask_holds_back_other_signals_until_it_returns(proc: Proc) -> None:
    # SIGUSR2's sa_mask blocks SIGRT, so no SIGRT frame is stacked on top of it: SIGUSR2 runs first.
    proc.sigaction(SIGRT, flags=SA_SIGINFO)
    proc.sigaction(SIGUSR2, flags=SA_SIGINFO, mask=sigset(SIGRT))
    proc.block_signals(SIGRT, SIGUSR2)
    proc.kill(proc.pid, SIGRT)
    proc.kill(proc.pid, SIGRT)
    proc.kill(proc.pid, SIGUSR2)
    proc.unblock_signals(SIGRT, SIGUSR2)
    assert [d.signo for d in wait_deliveries(proc, 3)] == [SIGUSR2, SIGRT, SIGRT]


def test_sa_nodefer_stacks_every_queued_instance(proc: Proc) -> None:
    # With SA_NODEFER a frame does not block its own signal: all of them are set up at once.
    proc.sigaction(SIGRT, flags=SA_SIGINFO | SA_NODEFER)
    proc.sigaction(SIGUSR2, flags=SA_SIGINFO | SA_NODEFER)
    proc.block_signals(SIGRT, SIGUSR2)
    for _ in range(2):
        proc.kill(proc.pid, SIGRT)
    proc.kill(proc.pid, SIGUSR2)
    proc.unblock_signals(SIGRT, SIGUSR2)
    assert [d.signo for d in wait_deliveries(proc, 3)] == [SIGRT, SIGRT, SIGUSR2]


def test_ignoring_a_pending_signal_discards_it(proc: Proc) -> None:
    proc.block_signals(SIGUSR1)
    proc.kill(proc.pid, SIGUSR1)
    assert sigpending(proc) == sigset(SIGUSR1)
    proc.sigaction(SIGUSR1, handler=SIG_IGN)
    assert sigpending(proc) == 0


def test_ignored_signal_is_not_queued(proc: Proc) -> None:
    proc.sigaction(SIGUSR1, handler=SIG_IGN)
    proc.kill(proc.pid, SIGUSR1)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    proc.getpid()
    assert proc.deliveries() == []


def test_blocked_signal_is_queued_even_if_ignored(proc: Proc) -> None:
    # sig_ignored: a blocked signal is queued, as the action may change before it is unblocked.
    proc.sigaction(SIGUSR1, handler=SIG_IGN)
    proc.block_signals(SIGUSR1)
    proc.kill(proc.pid, SIGUSR1)
    assert sigpending(proc) == sigset(SIGUSR1)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    proc.unblock_signals(SIGUSR1)
    assert [d.signo for d in wait_deliveries(proc, 1)] == [SIGUSR1]


def test_process_signal_goes_to_a_thread_that_does_not_block_it(proc: Proc) -> None:
    th = proc.thread()
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    proc.block_signals(SIGUSR1)
    proc.kill(proc.pid, SIGUSR1)
    [d] = wait_deliveries(proc, 1, poke=th)
    assert (d.signo, d.code, d.pid) == (SIGUSR1, SI_USER, proc.pid)
    assert sigpending(proc) == 0


def test_process_signal_waits_when_every_thread_blocks_it(proc: Proc) -> None:
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    proc.block_signals(SIGUSR1)
    th = proc.thread()  # inherits the mask
    proc.kill(proc.pid, SIGUSR1)
    th.getpid()
    assert proc.deliveries() == []
    assert sigpending(proc) == sigset(SIGUSR1) == sigpending(th)  # shared pending, seen by both
    th.unblock_signals(SIGUSR1)
    wait_deliveries(proc, 1, poke=th)
    assert sigpending(proc) == 0


def test_kill_signal_zero_checks_existence_only(proc: Proc) -> None:
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    proc.kill(proc.pid, 0)
    proc.getpid()
    assert proc.deliveries() == []


# -- kill / tgkill errors -----------------------------------------------------------------------------------------

def test_kill_errors(proc: Proc) -> None:
    with expect_errno(ESRCH):
        proc.kill(NO_SUCH_PID, SIGUSR1)
    with expect_errno(EINVAL):
        proc.kill(proc.pid, 65)
    with expect_errno(EINVAL):
        proc.kill(proc.pid, -1 & 0xFFFFFFFF)
    with expect_errno(ESRCH):
        proc.kill(NO_SUCH_PID, 65)  # the pid is looked up before the signal is checked


def test_kill_permission_between_users(target: Target) -> None:
    a = Proc(target.spawn(uid=1000, gid=1000))
    b = Proc(target.spawn(uid=2000, gid=2000))
    for sig in (SIGUSR1, 0):
        with expect_errno(EPERM):
            a.kill(b.pid, sig)
    with expect_errno(EPERM):
        a.tgkill(b.pid, b.tid, SIGUSR1)
    same = Proc(target.spawn(uid=1000, gid=3000))
    same.sigaction(SIGUSR1, flags=SA_SIGINFO)
    a.kill(same.pid, SIGUSR1)
    assert wait_deliveries(same, 1, poke=same)[0].uid == 1000
    root = Proc(target.spawn())
    root.kill(b.pid, 0)  # CAP_KILL


def test_kill_permission_compares_ids_with_target_real_and_saved_uid(target: Target) -> None:
    victim = Proc(target.spawn())
    victim.setresuid(2000, 6000, 1000)
    a = Proc(target.spawn(uid=1000, gid=1000))
    a.kill(victim.pid, 0)  # sender euid == target suid
    b = Proc(target.spawn())
    b.setresuid(2000, 5000, 5000)  # sender ruid == target ruid
    b.kill(victim.pid, 0)
    other = Proc(target.spawn())
    other.setresuid(7000, 6000, 6000)  # matches only the target's euid, which does not count
    with expect_errno(EPERM):
        other.kill(victim.pid, 0)


def test_kill_without_cap_kill(proc: Proc, target: Target) -> None:
    from mqsentry.abi.linux.capability import CAP_KILL

    other = Proc(target.spawn(uid=2000, gid=2000))
    proc.drop_cap(CAP_KILL)
    with expect_errno(EPERM):
        proc.kill(other.pid, 0)
    proc.kill(proc.pid, 0)


def test_kill_own_process_after_changing_thread_credentials(proc: Proc) -> None:
    # Signalling one's own thread group needs no permission, whatever the thread's ids are.
    th = proc.thread()
    th.setresuid(1000, 1000, 1000)
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO)
    th.kill(proc.pid, SIGUSR1)
    th.tgkill(proc.pid, proc.tid, SIGUSR1)
    assert {d.uid for d in wait_deliveries(proc, 2, poke=proc)} == {1000}


def test_sigcont_is_allowed_within_the_session(target: Target) -> None:
    a = Proc(target.spawn(uid=1000, gid=1000))
    b = Proc(target.spawn(uid=2000, gid=2000))
    with expect_errno(EPERM):
        a.kill(b.pid, SIGUSR1)
    a.kill(b.pid, SIGCONT)


def test_tgkill_errors(proc: Proc, target: Target) -> None:
    th = proc.thread()
    other = Proc(target.spawn())
    with expect_errno(ESRCH):
        proc.tgkill(other.pid, th.tid, SIGUSR1)  # th is not in that thread group
    with expect_errno(ESRCH):
        proc.tgkill(proc.pid, NO_SUCH_PID, SIGUSR1)
    with expect_errno(ESRCH):
        proc.tgkill(proc.pid, NO_SUCH_PID, 65)  # lookup comes before the signal check
    with expect_errno(EINVAL):
        proc.tgkill(proc.pid, th.tid, 65)
    for tgid, tid in ((0, th.tid), (proc.pid, 0), (-1, th.tid), (proc.pid, -1)):
        with expect_errno(EINVAL):
            proc.tgkill(tgid & 0xFFFFFFFF, tid & 0xFFFFFFFF, SIGUSR1)
    proc.tgkill(proc.pid, th.tid, 0)


def test_tkill(proc: Proc) -> None:
    th = proc.thread()
    proc.sigaction(SIGUSR2, flags=SA_SIGINFO)
    proc.call("tkill", th.tid, SIGUSR2)
    [d] = wait_deliveries(proc, 1, poke=th)
    assert (d.code, d.pid) == (SI_TKILL, proc.pid)
    with expect_errno(EINVAL):
        proc.call("tkill", 0, SIGUSR2)
    with expect_errno(ESRCH):
        proc.call("tkill", NO_SUCH_PID, SIGUSR2)


def test_sa_resethand_restores_default_after_one_delivery(proc: Proc) -> None:
    proc.sigaction(SIGUSR1, flags=SA_SIGINFO | SA_RESETHAND)
    proc.kill(proc.pid, SIGUSR1)
    wait_deliveries(proc, 1)
    assert get_action(proc, SIGUSR1)[0] == SIG_DFL


# -- stop / continue ------------------------------------------------------------------------------------------------

def test_sigstop_stops_a_child_and_sigcont_resumes_it(proc: Proc) -> None:
    child = proc.fork()
    proc.kill(child.pid, SIGSTOP)
    fut = background(child.getpid)
    time.sleep(0.1)
    assert not fut.done(), "a stopped process ran a syscall"
    proc.kill(child.pid, SIGCONT)
    assert fut.result(timeout=10) == child.pid


def test_sigcont_with_a_handler_resumes_and_is_delivered(proc: Proc) -> None:
    child = proc.fork()
    child.sigaction(SIGCONT, flags=SA_SIGINFO)
    proc.kill(child.pid, SIGSTOP)
    fut = background(child.getpid)
    time.sleep(0.05)
    assert not fut.done()
    proc.kill(child.pid, SIGCONT)
    assert fut.result(timeout=10) == child.pid
    [d] = wait_deliveries(child, 1)
    assert (d.signo, d.code, d.pid) == (SIGCONT, SI_USER, proc.pid)


def test_sigcont_discards_a_pending_stop_signal(proc: Proc) -> None:
    # SIGSTOP cannot be blocked, so the pending stop signal is SIGTSTP (default action: stop).
    child = proc.fork()
    child.block_signals(SIGTSTP)
    proc.kill(child.pid, SIGTSTP)
    assert sigpending(child) == sigset(SIGTSTP)
    proc.kill(child.pid, SIGCONT)
    assert sigpending(child) == 0
    child.unblock_signals(SIGTSTP)
    assert child.getpid() == child.pid  # not stopped


def test_stop_signal_discards_a_pending_sigcont(proc: Proc) -> None:
    child = proc.fork()
    child.block_signals(SIGCONT, SIGTSTP)
    proc.kill(child.pid, SIGCONT)
    assert sigpending(child) == sigset(SIGCONT)
    proc.kill(child.pid, SIGTSTP)
    assert sigpending(child) == sigset(SIGTSTP)
