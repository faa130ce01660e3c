"""Signal syscalls: rt_sigaction, rt_sigprocmask, rt_sigpending, kill, tgkill, tkill and pid queries.

Linux counterpart: kernel/signal.c (``do_sigaction``, ``sigprocmask``, ``kill_something_info``,
``do_tkill``, ``check_kill_permission``). gVisor counterpart: pkg/sentry/syscalls/linux/sys_signal.go
and sys_thread.go (getpid, gettid).
"""

from __future__ import annotations

import struct

from mqsentry.abi.linux.capability import CAP_KILL
from mqsentry.abi.linux.errno import EINVAL, EPERM, ESRCH
from mqsentry.abi.linux.signal import (
    NSIG,
    SA_EXPOSE_TAGBITS,
    SA_NOCLDSTOP,
    SA_NOCLDWAIT,
    SA_NODEFER,
    SA_ONSTACK,
    SA_RESETHAND,
    SA_RESTART,
    SA_RESTORER,
    SA_SIGINFO,
    SI_TKILL,
    SI_USER,
    SIG_BLOCK,
    SIG_SETMASK,
    SIG_UNBLOCK,
    SIGACTION,
    SIGCONT,
    SIGSET_SIZE,
    UNBLOCKABLE,
    sigmask,
)
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.signals import SigAction, SigInfo, handler_ignores, send_locked
from mqsentry.kernel.task import Task, ThreadGroup
from mqsentry.syscalls.linux.args import int32, uint64
from mqsentry.syscalls.linux.table import Syscall

_U64 = struct.Struct("<Q")

#: Flags rt_sigaction keeps (UAPI_SA_FLAGS; amd64 and arm64 both add SA_RESTORER).
UAPI_SA_FLAGS = (SA_NOCLDSTOP | SA_NOCLDWAIT | SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_NODEFER | SA_RESETHAND
                 | SA_EXPOSE_TAGBITS | SA_RESTORER)


def getpid(t: Task, *_: int) -> int:
    return t.tg.tgid


def gettid(t: Task, *_: int) -> int:
    return t.tid


def getppid(t: Task, *_: int) -> int:
    parent = t.tg.parent
    return parent.tgid if parent is not None else 0


def rt_sigaction(t: Task, sig: int, act: int, oact: int, sigsetsize: int, *_: int) -> int:
    if uint64(sigsetsize) != SIGSET_SIZE:
        raise SysError(EINVAL)
    signo = int32(sig)
    new = None
    if act:
        handler, flags, restorer, mask = SIGACTION.unpack(t.copy_in(act, SIGACTION.size))
        new = SigAction(handler, flags & UAPI_SA_FLAGS, restorer, mask & ~UNBLOCKABLE)
    if not 1 <= signo <= NSIG or (new is not None and sigmask(signo) & UNBLOCKABLE):
        raise SysError(EINVAL)
    k = t.kernel
    with k.sig_mu:
        tg = t.tg
        old = tg.actions[signo]
        if new is not None:
            tg.actions[signo] = new
            if handler_ignores(new, signo):
                # POSIX: setting a pending signal to be ignored discards it, in every thread.
                bit = sigmask(signo)
                tg.shared_pending.discard(bit)
                for th in tg.tasks:
                    th.pending.discard(bit)
    if oact:
        t.copy_out(oact, SIGACTION.pack(old.handler, old.flags, old.restorer, old.mask))
    return 0


def rt_sigprocmask(t: Task, how: int, nset: int, oset: int, sigsetsize: int, *_: int) -> int:
    if uint64(sigsetsize) != SIGSET_SIZE:
        raise SysError(EINVAL)
    old = t.sig_mask
    if nset:
        new = _U64.unpack(t.copy_in(nset, 8))[0] & ~UNBLOCKABLE
        h = int32(how)
        if h == SIG_BLOCK:
            mask = old | new
        elif h == SIG_UNBLOCK:
            mask = old & ~new
        elif h == SIG_SETMASK:
            mask = new
        else:
            raise SysError(EINVAL)
        t.set_sig_mask(mask)
    if oset:
        t.copy_out(oset, _U64.pack(old))
    return 0


def rt_sigpending(t: Task, uset: int, sigsetsize: int, *_: int) -> int:
    if uint64(sigsetsize) > SIGSET_SIZE:
        raise SysError(EINVAL)
    with t.kernel.sig_mu:
        pend = (t.pending.mask | t.tg.shared_pending.mask) & t.sig_mask
    t.copy_out(uset, _U64.pack(pend)[:uint64(sigsetsize)])
    return 0


def _may_kill(t: Task, victim: Task | None, sig: int) -> bool:
    """``check_kill_permission``: the caller's own thread group, matching uids (``kill_ok_by_cred``
    against the victim thread's credentials) or CAP_KILL. SIGCONT within the session is always
    allowed: every process of a sentry kernel is in one session (there is no setsid), as every test
    process of the native target is in the zygote's."""
    if victim is None:
        return False
    if victim.tg is t.tg:
        return True
    c = t.creds
    v = victim.creds
    if c.euid in (v.suid, v.ruid) or c.ruid in (v.suid, v.ruid) or c.has_cap(CAP_KILL):
        return True
    return sig == SIGCONT


def _group_signal(t: Task, tg: ThreadGroup, sig: int, code: int) -> None:
    """``group_send_sig_info`` for a process found by pid: signal number, then permission."""
    if not 0 <= sig <= NSIG:
        raise SysError(EINVAL)
    with t.kernel.sig_mu:
        # The thread the pid names (Linux: pid_task(pid, PIDTYPE_PID), the leader).
        victim = tg.tasks[0] if tg.tasks else None
    if not _may_kill(t, victim, sig):
        raise SysError(EPERM)
    if sig == 0:
        return
    info = SigInfo(sig, code=code, pid=t.tg.tgid, uid=t.creds.ruid)
    with t.kernel.sig_mu:
        leader = next((x for x in tg.tasks if not x.exited), None)
        if leader is not None:
            send_locked(leader, info, group=True)


def kill(t: Task, pid: int, sig: int, *_: int) -> int:
    # kill_something_info: the target is looked up first, then check_kill_permission validates sig.
    p, s = int32(pid), int32(sig)
    k = t.kernel
    if p > 0:
        tg = k.find_thread_group(p)
        if tg is None:
            raise SysError(ESRCH)
        _group_signal(t, tg, s, SI_USER)
        return 0
    if p == -0x8000_0000:
        raise SysError(ESRCH)  # -INT_MIN is undefined; Linux refuses it
    # Process groups (0: the caller's, < -1: -pid) and -1 (every process but init and the caller).
    with k.tasks_mu:
        groups = [g for g in k.thread_groups.values() if not g.exiting and any(not x.exited for x in g.tasks)]
    if p == 0:
        targets = [g for g in groups if g.pgid == t.tg.pgid]
    elif p == -1:
        targets = [g for g in groups if g.tgid > 1 and g is not t.tg]
    else:
        targets = [g for g in groups if g.pgid == -p]
    if not targets:
        raise SysError(ESRCH)
    if p == -1:
        # Linux reports the last error other than EPERM, so EPERM from every process is success.
        ret = 0
        for g in targets:
            try:
                _group_signal(t, g, s, SI_USER)
            except SysError as e:
                if e.errno != EPERM:
                    ret = e.errno
        if ret:
            raise SysError(ret)
        return 0
    # __kill_pgrp_info: success if any member was signalled, else the last error.
    ok = False
    err = EPERM
    for g in targets:
        try:
            _group_signal(t, g, s, SI_USER)
            ok = True
        except SysError as e:
            err = e.errno
    if not ok:
        raise SysError(err)
    return 0


def _tkill(t: Task, tgid: int, tid: int, sig: int) -> int:
    # do_send_specific: find the thread, then check_kill_permission (signal number, permission).
    target = t.kernel.find_task(tid)
    if target is None or (tgid > 0 and target.tg.tgid != tgid):
        raise SysError(ESRCH)
    if not 0 <= sig <= NSIG:
        raise SysError(EINVAL)
    if not _may_kill(t, target, sig):
        raise SysError(EPERM)
    if sig:
        target.send_signal(SigInfo(sig, code=SI_TKILL, pid=t.tg.tgid, uid=t.creds.ruid), group=False)
    return 0


def tgkill(t: Task, tgid: int, tid: int, sig: int, *_: int) -> int:
    g, i = int32(tgid), int32(tid)
    if g <= 0 or i <= 0:
        raise SysError(EINVAL)
    return _tkill(t, g, i, int32(sig))


def tkill(t: Task, tid: int, sig: int, *_: int) -> int:
    i = int32(tid)
    if i <= 0:
        raise SysError(EINVAL)
    return _tkill(t, 0, i, int32(sig))


SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("getpid", getpid), Syscall("gettid", gettid), Syscall("getppid", getppid),
    Syscall("rt_sigaction", rt_sigaction), Syscall("rt_sigprocmask", rt_sigprocmask),
    Syscall("rt_sigpending", rt_sigpending), Syscall("kill", kill), Syscall("tgkill", tgkill),
    Syscall("tkill", tkill),
)}
