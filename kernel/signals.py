"""Signal state, queuing and the choice of the thread that takes a process-directed signal.

Linux counterpart: kernel/signal.c (``prepare_signal``, ``sig_ignored``, ``legacy_queue``,
``complete_signal``, ``wants_signal``, ``dequeue_signal``) and the restart rules of
arch/x86/kernel/signal.c ``handle_signal``. gVisor counterpart: pkg/sentry/kernel/task_signals.go.

Every piece of signal state of every task and thread group is guarded by the kernel-wide
``Kernel.sig_mu`` (Linux: the per-process ``sighand->siglock``; one lock is simpler and signals are
cold). Lock order: IPC engine locks -> ``Kernel.sig_mu`` -> ``Task._cv`` (a leaf).

Handlers are only addresses: the sentry runs no guest code. Delivering to a handler records a
:class:`DeliveredSignal` on the thread group (what a host or test inspects) and applies the
handler's effect on the interrupted syscall (EINTR or restart). Frames for every deliverable signal
are set up before "returning to user space" and the handlers then run last-set-up first, each taken
to return at once (see ``Task._deliver_signals``), which is the order Linux runs them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import EINTR, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS
from mqsentry.abi.linux.signal import (
    DEFAULT_IGNORE,
    DEFAULT_STOP,
    NSIG,
    SA_NODEFER,
    SA_RESETHAND,
    SA_RESTART,
    SIG_DFL,
    SIG_IGN,
    SIGCONT,
    SIGINFO,
    SIGKILL,
    SIGRTMIN,
    SIGSTOP,
    UNBLOCKABLE,
    sigmask,
)

if TYPE_CHECKING:
    from mqsentry.kernel.task import Task, ThreadGroup


@dataclass(slots=True)
class SigAction:
    """A ``struct sigaction`` as stored by the kernel."""

    handler: int = SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0


@dataclass(slots=True)
class SigInfo:
    """A queued signal's ``siginfo_t`` (the fields the sentry produces)."""

    signo: int
    code: int = 0
    pid: int = 0
    uid: int = 0
    value: int = 0
    errno: int = 0

    def pack(self) -> bytes:
        """The 128-byte ``siginfo_t``."""
        return SIGINFO.pack(self.signo, self.errno, self.code, self.pid, self.uid & 0xFFFF_FFFF,
                            self.value & 0xFFFF_FFFF_FFFF_FFFF)

    @classmethod
    def unpack(cls, data: bytes) -> SigInfo:
        signo, err, code, pid, uid, value = SIGINFO.unpack(data)
        return cls(signo=signo, code=code, pid=pid, uid=uid, value=value, errno=err)


@dataclass(slots=True)
class DeliveredSignal:
    """A signal handed to a guest handler: what a test or host sees of signal delivery."""

    tid: int
    info: SigInfo
    handler: int
    flags: int
    #: The syscall's outcome chosen by this delivery: "eintr", "restart" or "" (not in a syscall).
    syscall_effect: str = ""


@dataclass(slots=True)
class PendingSet:
    """Queued signals (Linux ``struct sigpending``): a bit mask plus the siginfo queue."""

    mask: int = 0
    queue: list[SigInfo] = field(default_factory=list)

    def add(self, info: SigInfo) -> bool:
        """Queue ``info``; a standard signal already pending is coalesced (``legacy_queue``)."""
        bit = sigmask(info.signo)
        if info.signo < SIGRTMIN and self.mask & bit:
            return False
        self.mask |= bit
        self.queue.append(info)
        return True

    def take(self, deliverable: int) -> SigInfo | None:
        """Dequeue the lowest-numbered signal in ``deliverable`` (``next_signal``)."""
        ready = self.mask & deliverable
        if not ready:
            return None
        sig = (ready & -ready).bit_length()
        for i, info in enumerate(self.queue):
            if info.signo == sig:
                del self.queue[i]
                break
        else:  # pragma: no cover - mask and queue are kept in step
            info = SigInfo(sig)
        if not any(q.signo == sig for q in self.queue):
            self.mask &= ~sigmask(sig)
        return info

    def discard(self, bits: int) -> None:
        """Drop every queued instance of the signals in ``bits`` (``flush_sigqueue_mask``)."""
        if self.mask & bits:
            self.queue = [q for q in self.queue if not sigmask(q.signo) & bits]
            self.mask &= ~bits


def default_ignored(sig: int) -> bool:
    return bool(sigmask(sig) & DEFAULT_IGNORE)


def default_stops(sig: int) -> bool:
    return bool(sigmask(sig) & DEFAULT_STOP)


def handler_ignores(act: SigAction, sig: int) -> bool:
    """``sig_handler_ignored``: SIG_IGN, or SIG_DFL for a signal whose default is to ignore."""
    return act.handler == SIG_IGN or (act.handler == SIG_DFL and default_ignored(sig))


def sig_fatal(act: SigAction, sig: int) -> bool:
    """``sig_fatal``: the default action kills the whole thread group."""
    return act.handler == SIG_DFL and not (sigmask(sig) & (DEFAULT_IGNORE | DEFAULT_STOP))


def valid_signal(sig: int) -> bool:
    return 1 <= sig <= NSIG


# -- sending (callers hold Kernel.sig_mu) -----------------------------------------------------------

def prepare_signal(tg: ThreadGroup, sig: int) -> None:
    """Side effects of generating ``sig`` that happen even when it is then ignored: SIGCONT resumes a
    stopped group and discards pending stop signals; a stop signal discards a pending SIGCONT."""
    if sig == SIGCONT:
        tg.shared_pending.discard(DEFAULT_STOP)
        for t in tg.tasks:
            t.pending.discard(DEFAULT_STOP)
        if tg.group_stop:
            tg.group_stop = False
            for t in tg.tasks:
                t.kick()
    elif default_stops(sig):
        tg.shared_pending.discard(sigmask(SIGCONT))
        for t in tg.tasks:
            t.pending.discard(sigmask(SIGCONT))


def sig_ignored(t: Task, sig: int) -> bool:
    """``sig_ignored``: blocked signals are never ignored (the handler may change before unblock)."""
    if t.sig_mask & sigmask(sig):
        return False
    return handler_ignores(t.tg.actions[sig], sig)


def wants_signal(sig: int, t: Task) -> bool:
    """``wants_signal``: may ``t`` take ``sig`` now?"""
    if t.sig_mask & sigmask(sig) or t.exited:
        return False
    if sig == SIGKILL:
        return True
    if t.tg.group_stop:
        return False
    return t.state != "R" or not t.sigpending


def send_locked(target: Task, info: SigInfo, group: bool) -> None:
    """Generate a signal (``__send_signal_locked`` + ``complete_signal``).

    ``target`` is the thread for a thread-directed signal, or the task found by pid (normally the
    group leader) for a process-directed one.
    """
    tg = target.tg
    sig = info.signo
    if tg.exiting:
        return
    sink = tg.signal_sink
    if sink is not None:
        sink(target, info, group)  # a real process: the host kernel generates it
        return
    prepare_signal(tg, sig)
    if sig_ignored(target, sig):
        return
    pending = tg.shared_pending if group else target.pending
    if not pending.add(info):
        return
    # complete_signal: choose the thread to wake.
    if wants_signal(sig, target):
        t = target
    elif not group or len(tg.tasks) == 1:
        return
    else:
        chosen = next((cand for cand in tg.tasks if wants_signal(sig, cand)), None)
        if chosen is None:
            return
        t = chosen
    act = tg.actions[sig]
    if sig_fatal(act, sig) or sig == SIGKILL:
        # Fatal to the whole group: every thread dies (Linux queues SIGKILL to each).
        tg.begin_exit(sig)
        return
    if default_stops(sig) and act.handler == SIG_DFL:
        # Every thread must notice the stop, not only the one chosen.
        for th in tg.tasks:
            th.recalc_sigpending(force=True)
        return
    t.recalc_sigpending(force=True)


# -- the syscall-return side ------------------------------------------------------------------------

#: What ``handle_signal`` does to an interrupted syscall, by restart code.
def restart_effect(code: int, flags: int) -> str:
    """EINTR or restart for a syscall interrupted by a signal delivered to a handler."""
    if code in (ERESTART_RESTARTBLOCK, ERESTARTNOHAND):
        return "eintr"
    if code == ERESTARTSYS:
        return "restart" if flags & SA_RESTART else "eintr"
    if code == ERESTARTNOINTR:
        return "restart"
    return ""


def handler_mask(act: SigAction, sig: int) -> int:
    """Signals blocked while a handler runs."""
    extra = 0 if act.flags & SA_NODEFER else sigmask(sig)
    return (act.mask | extra) & ~UNBLOCKABLE


def reset_on_delivery(act: SigAction) -> bool:
    return bool(act.flags & SA_RESETHAND)


__all__ = [
    "SigAction", "SigInfo", "DeliveredSignal", "PendingSet", "EINTR", "send_locked", "restart_effect",
    "handler_mask", "handler_ignores", "sig_fatal", "default_stops", "default_ignored", "valid_signal",
    "reset_on_delivery", "SIGSTOP",
]
