"""Tasks (threads) and thread groups (processes): syscall entry, blocking, signal delivery.

Linux counterpart: ``struct task_struct`` / ``struct signal_struct``, the syscall entry and exit path
(kernel/entry/common.c ``syscall_exit_to_user_mode`` -> ``arch_do_signal_or_restart``), do_signal_stop
and do_group_exit. gVisor counterpart: pkg/sentry/kernel/task.go, task_syscall.go, task_block.go,
task_signals.go, thread_group.go.

A task is driven by whichever Python thread calls :meth:`Task.syscall`; a blocking syscall blocks that
thread in :meth:`Task.block` until another task's action wakes it, a signal interrupts it, or its
deadline passes. One Python thread must not drive two tasks at once, and a task is driven by at most
one thread at a time (as a CPU runs one thread at a time).

Locking: ``Kernel.sig_mu`` guards every signal field of tasks and thread groups (``sig_mask``,
``pending``, ``sigpending``, ``actions``, ``shared_pending``, ``group_stop``, ``exiting``, ``exited``,
``delivered``). ``Task._cv`` (a leaf) guards ``_woken`` and the sleep itself (a host that parks
calls as greenlets, :attr:`Task.sleeper`, takes it only to test and consume the flags, never across
a switch). ``creds``, ``ipc_ns``, ``fs_context`` and ``mnt_ns`` are replaced only by the task itself
(reads from other tasks see either value); ``fd_table`` is immutable (the table itself has its own
lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mqsentry.abi.linux.errno import EFAULT, EINTR, ENOSYS, ESRCH, ETIMEDOUT
from mqsentry.abi.linux.limits import (
    DEFAULT_MSGQUEUE,
    DEFAULT_NOFILE,
    RLIM_INFINITY,
    RLIM_NLIMITS,
    RLIMIT_MSGQUEUE,
    RLIMIT_NOFILE,
    RLIMIT_SIGPENDING,
    RLIMIT_STACK,
)
from mqsentry.abi.linux.signal import NSIG, SA_RESETHAND, SIG_DFL, SIG_IGN, UNBLOCKABLE, sigmask
from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.errors import SysError, TaskBusyError
from mqsentry.kernel.memory import AddressSpace, MemoryFault
from mqsentry.kernel.memory_map import RegionMap
from mqsentry.kernel.signals import (
    DeliveredSignal,
    PendingSet,
    SigAction,
    SigInfo,
    default_ignored,
    default_stops,
    handler_mask,
    restart_effect,
    send_locked,
)

if TYPE_CHECKING:
    from mqsentry.fs.vfs.context import FSContext, KernelVFS
    from mqsentry.fs.vfs.fdtable import FDTable
    from mqsentry.fs.vfs.mount import MountNamespace
    from mqsentry.kernel.ipc_namespace import IPCNamespace
    from mqsentry.kernel.kernel import Kernel

log = logging.getLogger("mqsentry")

_MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF
# What _deliver_signals' loop does after one step.
_STEP_AGAIN: Final = 0  # look at the next signal
_STEP_DONE: Final = 1  # nothing left to deliver
_STEP_STOP: Final = 2  # sit in the group stop, then look again
_STEP_EXIT: Final = 3  # the task is exiting

#: The longest single host wait, in seconds. ``threading`` refuses timeouts above TIMEOUT_MAX (about
#: 292 years) and a far deadline (``tv_sec = INT64_MAX``, which Linux clamps to KTIME_MAX) is
#: representable in a timespec, so a sleep waits at most this long and then re-arms until the real
#: deadline: the loop in :meth:`Task._block` re-reads the clock after every wait anyway.
MAX_HOST_WAIT_S = min(threading.TIMEOUT_MAX, 86_400.0)


def _default_rlimits() -> list[tuple[int, int]]:
    limits = [(RLIM_INFINITY, RLIM_INFINITY)] * RLIM_NLIMITS
    limits[RLIMIT_NOFILE] = DEFAULT_NOFILE
    limits[RLIMIT_MSGQUEUE] = (DEFAULT_MSGQUEUE, DEFAULT_MSGQUEUE)
    limits[RLIMIT_STACK] = (8 << 20, RLIM_INFINITY)
    limits[RLIMIT_SIGPENDING] = (63_000, 63_000)
    return limits


class ThreadGroup:
    """A process: what the threads of one thread group share.

    Guarded by ``Kernel.sig_mu``: ``tasks``, ``actions``, ``shared_pending``, ``group_stop``,
    ``exiting``, ``exit_signal``, ``delivered``. Guarded by ``rlimit_mu``: ``rlimits``.
    Immutable: ``kernel``, ``tgid``, ``parent``. ``mm`` is replaced only at fork.
    ``exit_hooks`` run once when the last thread exits (fd tables hang their cleanup there).
    """

    def __init__(self, kernel: Kernel, tgid: int, mm: Any, parent: ThreadGroup | None) -> None:
        self.kernel = kernel
        self.tgid = tgid
        self.parent = parent
        self.pgid: int = parent.pgid if parent is not None else tgid
        self.mm = mm
        self.tasks: list[Task] = []
        self.actions: list[SigAction] = [SigAction() for _ in range(NSIG + 1)]
        self.shared_pending = PendingSet()
        self.group_stop = False
        self.exiting = False
        self.exit_signal = 0
        self.exit_code = 0
        self.delivered: list[DeliveredSignal] = []
        self.rlimit_mu = threading.Lock()
        self.rlimits = _default_rlimits()
        self.exit_hooks: list[Callable[[ThreadGroup], None]] = []
        #: If set, signals generated for this process go here instead of the sentry's own signal
        #: state: fn(target_task, siginfo, process_directed). A platform that serves a real process
        #: forwards them to the host (the real process has the handlers and masks). Guarded by sig_mu.
        self.signal_sink: Callable[[Task, SigInfo, bool], None] | None = None

    @property
    def leader(self) -> Task | None:
        return self.tasks[0] if self.tasks else None

    def begin_exit(self, sig: int) -> None:
        """Start a group exit because of fatal signal ``sig`` (caller holds ``Kernel.sig_mu``)."""
        if self.exiting:
            return
        self.exiting = True
        self.exit_signal = sig
        self.group_stop = False
        for t in self.tasks:
            t.recalc_sigpending(force=True)
            if not t.in_syscall and not t.exited:
                # A thread running user code dies at once, as on Linux (the signal interrupts it);
                # threads inside a syscall die on their way out. Process-exit hooks (closing fds,
                # dropping mq notifications) run once the caller has released its locks.
                t.exited = True
                self.kernel.task_exited_locked(t)

    def rlimit(self, resource: int) -> tuple[int, int]:
        return self.rlimits[resource]


class Task:
    """One thread.

    See the module docstring for what guards which field. ``tid``, ``kernel`` and ``tg`` are
    immutable; ``state`` is written only by the task's own driving thread ("R" running, "S" asleep in
    a syscall, "T" stopped), and read by others for diagnostics.
    """

    def __init__(self, kernel: Kernel, tid: int, tg: ThreadGroup, creds: Credentials, ipc_ns: IPCNamespace,
                 fd_table: FDTable, fs_context: FSContext, mnt_ns: MountNamespace) -> None:
        self.kernel = kernel
        self.tid = tid
        self.tg = tg
        self.creds = creds
        self.ipc_ns = ipc_ns
        #: The process's descriptor table (``files_struct``; shared with CLONE_FILES threads).
        self.fd_table = fd_table
        #: The process's umask, root and cwd (``fs_struct``; shared with CLONE_FS threads).
        self.fs_context = fs_context
        #: The task's mount namespace (``nsproxy->mnt_ns``); replaced by unshare(CLONE_NEWNS).
        self.mnt_ns = mnt_ns
        self.sig_mask = 0
        self.pending = PendingSet()
        self.sigpending = False
        self.exited = False
        self.state = "R"
        #: True while a thread is inside :meth:`syscall` for this task (written by that thread only).
        self.in_syscall = False
        self._cv = threading.Condition(threading.Lock())
        self._woken = False
        #: The entry token: a one-element list that the host thread inside :meth:`syscall` has
        #: emptied (never waited for: a second thread gets TaskBusyError at once instead of a silent
        #: hang or a lost wake-up). A try-lock that is never waited on needs only an atomic
        #: test-and-take: ``list.pop`` is one C call (atomic under the GIL, and under the list's own
        #: lock in free-threaded builds), where ``Lock.acquire(False)`` parses its arguments through
        #: a tuple on CPython 3.11 -- twice per syscall, a measurable share of a fast call.
        self._entry: list[bool] = [True]
        #: The kernel's list of exit hooks to run (``Kernel._deferred_exits``; the same list for the
        #: kernel's lifetime), tested after every syscall without going through the kernel object.
        self._deferred_exits = kernel._deferred_exits
        self._syscalls = kernel.syscall_table.handlers
        #: The region map of the process's memory when that is the default AddressSpace (copy_in's
        #: and copy_out's fast path, a compiled call). A thread group's mm never changes after
        #: creation, nor an address space's map, so this is immutable.
        self._map: RegionMap | None = tg.mm.map if type(tg.mm) is AddressSpace else None
        #: While a platform serves a syscall whose reply may fail to reach the caller: the undo actions
        #: engine operations record (see kernel/platform/loop.py); None otherwise. Written by the
        #: task's driving thread only.
        self.undo: list[Callable[[], None]] | None = None
        #: Told when this task is about to sleep on its host thread in :meth:`block` and when it
        #: wakes (a host hook; the seccomp platform uses :attr:`sleeper` instead). An object with
        #: ``parking(task) -> token`` and ``unparked(token)``. Written by the host before the task runs.
        self.park_observer: Any = None
        #: None: :meth:`block` sleeps the driving host thread on ``_cv``. Otherwise the host runs its
        #: tasks' calls as greenlets on one OS thread (kernel/platform/parking.py): an object with
        #: ``sleep(task, deadline_ns) -> int``, which :meth:`block` calls instead (it returns what
        #: ``block`` returns, or -1 when it cannot park here: then the thread sleeps as usual), and
        #: ``ready(task)``, which :meth:`wake` and :meth:`kick` call after setting their flags (from
        #: any thread) so the host resumes the sleeper. Written by the host before the task runs.
        self.sleeper: Any = None
        #: The mask to restore after signal delivery when a syscall with a temporary mask (ppoll,
        #: epoll_pwait) was interrupted (Linux ``saved_sigmask`` + TIF_RESTORE_SIGMASK).
        self.saved_sig_mask: int | None = None

    # -- identity ------------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        """The thread group id (what getpid returns)."""
        return self.tg.tgid

    @property
    def mm(self) -> Any:
        return self.tg.mm

    @property
    def vfs(self) -> KernelVFS:
        """The kernel's VFS (mount(2)'s filesystem types, the initial mount namespace)."""
        return self.kernel.vfs

    def __repr__(self) -> str:
        return f"<Task tid={self.tid} pid={self.tg.tgid} uid={self.creds.euid}>"

    # -- syscall entry -------------------------------------------------------------------------------
    def syscall(self, nr: int, a0: int = 0, a1: int = 0, a2: int = 0, a3: int = 0, a4: int = 0,
                a5: int = 0) -> int:
        """Run syscall ``nr`` with raw 64-bit register values; return the result or ``-errno``.

        Unknown numbers give -ENOSYS. ERESTART* codes never escape: they become EINTR or a
        transparent restart according to the signal that caused them. A Python exception inside the
        sentry is an internal error (counted in ``Kernel.internal_errors``; the guest sees EINVAL).

        Raises only for the host's own reasons: :class:`TaskBusyError` at once if another host thread
        is inside a syscall of this task (a task is one thread: one syscall at a time), and any
        BaseException (KeyboardInterrupt, SystemExit) that the host's memory object or the host's
        signal handlers raise, which propagates after the task has left the syscall cleanly.
        """
        entry = self._entry
        try:
            entry.pop()
        except IndexError:
            raise TaskBusyError(f"{self!r} is already inside a syscall on another host thread; a task is driven "
                                "by one host thread at a time (make a thread with clone_thread instead)") from None
        try:
            try:
                fn = self._syscalls[nr]
            except (KeyError, TypeError):
                fn = None
            if fn is None or self.sigpending or self.exited or self.kernel.tracer is not None:
                return self._syscall_full(fn, nr, a0, a1, a2, a3, a4, a5)
            # Fast path: one attempt, nothing to deliver before or (usually) after.
            self.in_syscall = True
            try:
                ret = fn(self, a0, a1, a2, a3, a4, a5)
            except SysError as e:
                ret = -e.errno
            except Exception as e:  # a sentry bug must not take the host down
                ret = self.kernel.internal_error(self, nr, (a0, a1, a2, a3, a4, a5), e)
            except BaseException:
                self._left_syscall_abruptly()
                raise
            if self.sigpending or -517 < ret < -511 or self.saved_sig_mask is not None:
                # Still "in the syscall" (user_tick must not deliver meanwhile): the full path finishes.
                return self._syscall_full(fn, nr, a0, a1, a2, a3, a4, a5, first=ret)
            self.in_syscall = False
            if self._deferred_exits:
                # This call made another process exit (e.g. kill): finish its teardown now.
                self.kernel.run_exit_hooks()
            return ret
        finally:
            entry.append(True)

    def _left_syscall_abruptly(self) -> None:
        """A host BaseException is leaving the syscall: the task is back in "user mode" with the mask
        it had before any temporary syscall mask (ppoll, epoll_pwait), so signals reach it again."""
        self.in_syscall = False
        self.state = "R"
        saved = self.saved_sig_mask
        if saved is not None:
            self.saved_sig_mask = None
            self.set_sig_mask(saved)

    def _syscall_full(self, fn: Callable[..., int] | None, nr: int, a0: int, a1: int, a2: int, a3: int,
                      a4: int, a5: int, first: int | None = None) -> int:
        """The complete syscall path: signal delivery at entry and exit, restarts, the tracer.
        ``first`` is the result of an attempt the fast path already made."""
        tracer = self.kernel.tracer
        args = (a0, a1, a2, a3, a4, a5)
        if fn is None or self.exited:
            ret = -ESRCH if self.exited else -ENOSYS
            if tracer is not None:
                tracer(self, nr, args, ret)
            return ret
        if first is None and self.sigpending:
            # Signals that arrived while the task ran "user code" are delivered before it enters.
            self._deliver_signals(0)
            if self.exited:
                self.kernel.run_exit_hooks()
                return -EINTR
        self.in_syscall = True
        try:
            while True:
                if first is None:
                    try:
                        ret = fn(self, a0, a1, a2, a3, a4, a5)
                    except SysError as e:
                        ret = -e.errno
                    except Exception as e:  # a sentry bug must not take the host down
                        ret = self.kernel.internal_error(self, nr, args, e)
                    except BaseException:
                        self._left_syscall_abruptly()
                        raise
                else:
                    ret = first
                    first = None
                if self.sigpending or -517 < ret < -511:
                    final = self._deliver_signals(ret)
                    if self.kernel._deferred_exits:
                        self.kernel.run_exit_hooks()
                    if final is None:
                        if self.saved_sig_mask is not None:
                            self.set_sig_mask(self.saved_sig_mask)
                            self.saved_sig_mask = None
                        continue  # restart the syscall
                    ret = final
                if self.saved_sig_mask is not None:
                    self.set_sig_mask(self.saved_sig_mask)
                    self.saved_sig_mask = None
                if tracer is not None:
                    tracer(self, nr, args, ret)
                return ret
        finally:
            self.in_syscall = False
            if self.kernel._deferred_exits:
                self.kernel.run_exit_hooks()

    def user_tick(self) -> bool:
        """The host reports that this task is running user code (a timer tick): deliver pending
        signals now, as Linux does on the next return to user mode after an interrupt. Returns False
        (and does nothing) while the task is inside a syscall, whose own exit path delivers them."""
        if self.in_syscall or self.exited or not self.sigpending:
            return False
        self._deliver_signals(0)
        if self.kernel._deferred_exits:
            self.kernel.run_exit_hooks()
        return True

    # -- memory --------------------------------------------------------------------------------------
    def copy_in(self, addr: int, n: int) -> bytes:
        """copy_from_user: ``n`` bytes at ``addr`` or SysError(EFAULT). Zero bytes never fault."""
        rmap = self._map
        if rmap is not None and n > 0:
            # Hot path: the default address space's regions, read directly.
            data = rmap.read(addr, n)
            if data is None:
                raise SysError(EFAULT)
            return data
        if n == 0:
            return b""
        if addr <= 0 or n < 0 or addr + n > _MASK64:
            raise SysError(EFAULT)
        try:
            data = self.tg.mm.read(addr, n)
        except Exception:
            raise SysError(EFAULT) from None
        if len(data) != n:
            raise SysError(EFAULT)
        return bytes(data)

    def copy_out(self, addr: int, data: bytes) -> None:
        """copy_to_user: write ``data`` at ``addr`` or SysError(EFAULT)."""
        n = len(data)
        rmap = self._map
        if rmap is not None and n:
            if not rmap.write(addr, data):
                raise SysError(EFAULT)
            return
        if not n:
            return
        if addr <= 0 or addr + n > _MASK64:
            raise SysError(EFAULT)
        try:
            self.tg.mm.write(addr, data)
        except Exception:
            raise SysError(EFAULT) from None

    def copy_in_string(self, addr: int, maxlen: int) -> bytes | None:
        """strncpy_from_user: the bytes before the NUL, or None if there is no NUL within ``maxlen``
        bytes; SysError(EFAULT) if the string is not readable."""
        if addr <= 0:
            raise SysError(EFAULT)
        mm = self.tg.mm
        try:
            if isinstance(mm, AddressSpace):
                return mm.read_cstring(addr, maxlen)
            out = bytearray()
            chunk = 64
            while len(out) < maxlen:
                # Read a byte at a time at page ends so a string ending just before a hole works.
                n = min(chunk, maxlen - len(out), 4096 - ((addr + len(out)) & 4095))
                data = mm.read(addr + len(out), n)
                if len(data) != n:
                    raise MemoryFault("short read")
                end = data.find(0)
                if end >= 0:
                    out += data[:end]
                    return bytes(out)
                out += data
            return None
        except SysError:
            raise
        except Exception:
            raise SysError(EFAULT) from None

    # -- blocking ------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Waker protocol: the event this task waits for happened."""
        with self._cv:
            self._woken = True
            self._cv.notify()
        sleeper = self.sleeper
        if sleeper is not None:
            sleeper.ready(self)

    def kick(self) -> None:
        """Make a sleeping task re-evaluate (signal, stop, continue, clock jump) without a wakeup."""
        with self._cv:
            self._cv.notify()
        sleeper = self.sleeper
        if sleeper is not None:
            sleeper.ready(self)

    def block(self, deadline_ns: int | None = None) -> int:
        """Sleep until woken (0), interrupted by a signal (EINTR) or past ``deadline_ns`` (ETIMEDOUT).

        ``deadline_ns`` is absolute CLOCK_REALTIME of the kernel's clock. A wake that arrived before
        the call is not lost: it makes this return 0 at once. Callers re-check their condition after
        any return (wakes may be stale), as with Linux's wait loops.
        """
        sleeper = self.sleeper
        if sleeper is not None:
            ret: int = sleeper.sleep(self, deadline_ns)
            if ret >= 0:
                return ret
        obs = self.park_observer
        if obs is not None:
            token = obs.parking(self)
            try:
                return self._block(deadline_ns)
            finally:
                obs.unparked(token)
        return self._block(deadline_ns)

    def _block(self, deadline_ns: int | None) -> int:
        clock = self.kernel.clock
        subscribed = deadline_ns is not None and not clock.real_time
        if subscribed:
            clock.subscribe(self.kick)
        try:
            with self._cv:
                self.state = "S"
                try:
                    while True:
                        if self._woken:
                            self._woken = False
                            return 0
                        if self.sigpending:
                            return EINTR
                        timeout = None
                        if deadline_ns is not None:
                            now = clock.now_ns()
                            if now >= deadline_ns:
                                return ETIMEDOUT
                            if clock.real_time:
                                timeout = min((deadline_ns - now) / 1e9, MAX_HOST_WAIT_S)
                        self._cv.wait(timeout)
                finally:
                    self.state = "R"
        finally:
            if subscribed:
                clock.unsubscribe(self.kick)

    def wakeup_status(self, deadline_ns: int | None) -> int:
        """For a host's own sleep (:attr:`sleeper`): what :meth:`block` returns now -- 0 if woken (the
        wake-up is consumed), EINTR if a signal is pending, ETIMEDOUT past ``deadline_ns`` -- or -1
        to keep sleeping. The same checks in the same order as :meth:`_block`'s loop."""
        with self._cv:
            if self._woken:
                self._woken = False
                return 0
            if self.sigpending:
                return EINTR
        if deadline_ns is not None and self.kernel.clock.now_ns() >= deadline_ns:
            return ETIMEDOUT
        return -1

    def clear_wakeup(self) -> None:
        """Forget a stale wakeup before registering a new wait."""
        self._woken = False

    # -- signals ---------------------------------------------------------------------------------------
    def recalc_sigpending(self, force: bool = False) -> None:
        """``recalc_sigpending`` (caller holds Kernel.sig_mu): set the flag that interrupts sleeps."""
        tg = self.tg
        pend = ((self.pending.mask | tg.shared_pending.mask) & ~self.sig_mask) != 0
        flag = pend or tg.group_stop or tg.exiting or force
        self.sigpending = flag
        if flag:
            self.kick()

    def set_sig_mask(self, mask: int) -> None:
        """Install a new blocked mask (SIGKILL/SIGSTOP can never be blocked) and recompute."""
        with self.kernel.sig_mu:
            newly_blocked = mask & ~UNBLOCKABLE & ~self.sig_mask
            self.sig_mask = mask & ~UNBLOCKABLE
            self.recalc_sigpending()
            # retarget_shared_pending: a process-directed signal this thread no longer takes is
            # handed to another thread that does (Linux wakes one such thread per signal).
            retarget = self.tg.shared_pending.mask & newly_blocked
            if retarget:
                for t in self.tg.tasks:
                    if t is not self and not t.exited and retarget & ~t.sig_mask:
                        t.recalc_sigpending()
                        retarget &= t.sig_mask
                        if not retarget:
                            break
            if not self.sigpending:
                # Unblocking may make a shared signal deliverable by another thread only.
                pass

    def send_signal(self, info: SigInfo, group: bool = False) -> None:
        """Generate a signal for this thread (``group`` False) or its process (``group`` True)."""
        with self.kernel.sig_mu:
            send_locked(self, info, group)

    def _deliver_signals(self, ret: int) -> int | None:
        """The signal part of the syscall return path.

        Dequeues deliverable signals: stops for stop signals, dies for fatal ones, and sets up a
        frame for each one that has a handler. As on Linux (exit_to_user_mode_loop calling
        arch_do_signal_or_restart while signals remain), frames stack: each adds its handler mask
        (the signal itself unless SA_NODEFER, plus sa_mask) before the next signal is chosen, and the
        handlers then run last-set-up first, each one's sigreturn restoring the mask it interrupted
        (which may make more signals deliverable). A handler "runs" when its delivery is recorded.
        Returns the syscall's final value, or None to restart it.
        """
        restart_code = -ret if -517 < ret < -511 else 0
        effect = ""
        #: Set-up frames not yet run: (delivery, the mask to restore at its sigreturn).
        frames: list[tuple[DeliveredSignal, int]] = []
        sig_mu = self.kernel.sig_mu
        while True:
            with sig_mu:
                step, effect = self._signal_step_locked(frames, restart_code, effect)
            if step == _STEP_EXIT:
                return -EINTR if restart_code else ret
            if step == _STEP_DONE:
                break
            if step == _STEP_STOP:
                self._stop()
        if effect == "eintr":
            return -EINTR
        if restart_code:
            return None  # no handler ran, or the handler asked for a restart
        return ret

    def _signal_step_locked(self, frames: list[tuple[DeliveredSignal, int]], restart_code: int,
                            effect: str) -> tuple[int, str]:
        """One turn of :meth:`_deliver_signals`' loop (caller holds ``Kernel.sig_mu``): act on the
        next signal, or run the top frame's handler. Returns what the loop does next and the restart
        effect so far. (A separate method so that the loop has no break/continue inside its ``with``:
        mypyc cannot compile those.)"""
        k = self.kernel
        tg = self.tg
        if tg.exiting:
            self._exit_locked()
            return _STEP_EXIT, effect
        if tg.group_stop:
            return _STEP_STOP, effect
        deliverable = ~self.sig_mask
        info = self.pending.take(deliverable) or tg.shared_pending.take(deliverable)
        if info is None:
            if frames:
                # Run the top frame's handler; its sigreturn restores the older mask.
                d, saved = frames.pop()
                tg.delivered.append(d)
                k.signal_delivered(self, d.info)
                self.sig_mask = saved
                return _STEP_AGAIN, effect
            self.recalc_sigpending()
            return _STEP_DONE, effect
        sig = info.signo
        act = tg.actions[sig]
        if act.handler == SIG_IGN or (act.handler == SIG_DFL and default_ignored(sig)):
            return _STEP_AGAIN, effect
        if act.handler == SIG_DFL:
            if default_stops(sig):
                tg.group_stop = True
                for t in tg.tasks:
                    t.recalc_sigpending(force=True)
                return _STEP_STOP, effect
            # Terminate (or core dump): the whole group dies.
            tg.begin_exit(sig)
            self._exit_locked()
            return _STEP_EXIT, effect
        this_effect = restart_effect(restart_code, act.flags) if restart_code and not effect else ""
        if this_effect:
            effect = this_effect
        frames.append((DeliveredSignal(self.tid, info, act.handler, act.flags, this_effect), self.sig_mask))
        self.sig_mask |= handler_mask(act, sig)
        if act.flags & SA_RESETHAND:
            tg.actions[sig] = SigAction()
        return _STEP_AGAIN, effect

    def _stop(self) -> None:
        """Sit in the group stop until SIGCONT or SIGKILL."""
        with self._cv:
            self.state = "T"
            try:
                while self.tg.group_stop and not self.tg.exiting:
                    self._cv.wait()
            finally:
                self.state = "R"

    def _exit_locked(self) -> None:
        """This thread dies as part of a group exit (caller holds Kernel.sig_mu)."""
        if not self.exited:
            self.exited = True
            self.kernel.task_exited_locked(self)

    # -- lifecycle -------------------------------------------------------------------------------------
    def fork(self, mm: Any = None, tid: int | None = None) -> Task:
        """A new process that copies this one (memory, signal actions and mask, creds, rlimits), in the
        same IPC namespace. ``mm`` replaces the copied memory (hosts supply their own)."""
        return self.kernel.fork_task(self, mm=mm, tid=tid)

    def clone_thread(self, tid: int | None = None) -> Task:
        """A new thread in this process (shares memory, fds, signal actions; copies creds and mask)."""
        return self.kernel.clone_thread(self, tid=tid)

    def exit(self, code: int = 0) -> None:
        """This thread exits (``exit(2)``)."""
        with self.kernel.sig_mu:
            if not self.exited:
                self.exited = True
                self.tg.exit_code = code
                self.kernel.task_exited_locked(self)
        self.kernel.run_exit_hooks()

    def exit_group(self, code: int = 0) -> None:
        """The whole process exits (``exit_group(2)``)."""
        with self.kernel.sig_mu:
            tg = self.tg
            tg.exit_code = code
            if not tg.exiting:
                tg.exiting = True
                for t in list(tg.tasks):
                    if t is not self:
                        t.recalc_sigpending(force=True)
            for t in list(tg.tasks):
                if not t.exited and (t is self or t.state != "S"):
                    t.exited = True
                    self.kernel.task_exited_locked(t)
        self.kernel.run_exit_hooks()

    # -- misc helpers for handlers -------------------------------------------------------------------
    def rlimit_cur(self, resource: int) -> int:
        return self.tg.rlimits[resource][0]


def sigset_valid_for_action(sig: int) -> bool:
    """Signals whose action may be changed (not SIGKILL/SIGSTOP)."""
    return 1 <= sig <= NSIG and not sigmask(sig) & UNBLOCKABLE


__all__ = ["Task", "TaskBusyError", "ThreadGroup", "sigset_valid_for_action"]
