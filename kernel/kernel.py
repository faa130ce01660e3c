"""The embedded kernel: tasks, pids, the root IPC namespace, the clock and the syscall table.

Linux counterpart: the global kernel state a syscall reaches through ``current`` (pid allocation in
kernel/pid.c, fork in kernel/fork.c, ``init_ipc_ns``). gVisor counterpart: pkg/sentry/kernel/kernel.go
(``Kernel``, ``TaskSet``, ``RootIPCNamespace``) and task_clone.go.

There is no hidden global state: every piece of state hangs off a :class:`Kernel`, so a host can run
several kernels side by side (tests create one per test).

Lock order of package ``kernel`` (and the IPC packages under it), outermost first:
``Kernel.tasks_mu`` -> IPC registry locks (``msgqueue.Registry.ids.mu``, ``mqfs.MqueueFilesystem.mu``) -> IPC object
locks (``msgqueue.Queue.mu``, ``mq.Queue.mu``) -> ``Kernel.sig_mu`` -> ``waiter.Queue._mu`` and
``Task._cv`` (leaves).
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.ipc_namespace import IPCNamespace
from mqsentry.kernel.ktime import Clock, RealtimeClock
from mqsentry.kernel.memory import AddressSpace
from mqsentry.kernel.signals import SigAction, SigInfo
from mqsentry.kernel.task import Task, ThreadGroup

log = logging.getLogger("mqsentry")

#: Signature of a syscall tracer: (task, nr, raw args, result) after each syscall.
Tracer = Callable[[Task, int, tuple[int, ...], int], None]

ARCHES = ("amd64", "arm64")


class Kernel:
    """An embedded Linux kernel that serves message-queue syscalls.

    Guarded by ``tasks_mu``: ``tasks``, ``thread_groups``, ``_next_tid``. Guarded by ``sig_mu``: all
    signal state (see kernel.signals). Immutable after construction: ``arch``, ``syscall_table``,
    ``root_ipc_ns``. ``clock``, ``tracer`` and ``on_signal`` may be replaced by the host at any time.
    """

    def __init__(self, arch: str = "amd64", clock: Clock | None = None) -> None:
        if arch not in ARCHES:
            raise ValueError(f"unsupported arch {arch!r}; choose one of {ARCHES}")
        from mqsentry.syscalls.linux import table_for  # late: syscalls import kernel

        self.arch = arch
        self.clock: Clock = clock if clock is not None else RealtimeClock()
        self.syscall_table = table_for(arch)
        self.tasks_mu = threading.Lock()
        self.sig_mu = threading.RLock()
        self.tasks: dict[int, Task] = {}
        self.thread_groups: dict[int, ThreadGroup] = {}
        self._next_tid = 1
        self.tracer: Tracer | None = None
        #: Called as on_signal(task, siginfo) after each delivery to a handler (under sig_mu).
        self.on_signal: Callable[[Task, SigInfo], None] | None = None
        self.internal_errors: list[str] = []
        self._deferred_exits: list[tuple[ThreadGroup, Callable[[ThreadGroup], None]]] = []
        self.root_ipc_ns = IPCNamespace(self, creator_uid=0)

    # -- tasks ----------------------------------------------------------------------------------------
    def _alloc_tid(self, want: int | None) -> int:
        # Caller holds tasks_mu.
        if want is not None:
            if want <= 0 or want in self.tasks or want in self.thread_groups:
                raise ValueError(f"tid {want} is not free")
            self._next_tid = max(self._next_tid, want + 1)
            return want
        while self._next_tid in self.tasks or self._next_tid in self.thread_groups:
            self._next_tid += 1
        tid = self._next_tid
        self._next_tid += 1
        return tid

    def new_task(self, uid: int = 0, gid: int = 0, groups: tuple[int, ...] | list[int] = (),
                 caps: int | None = None, mm: Any = None, pid: int | None = None,
                 ipc_ns: IPCNamespace | None = None) -> Task:
        """A new process with one thread, in the root IPC namespace unless ``ipc_ns`` is given.

        Capabilities default as Linux gives them (full for uid 0, none otherwise); ``caps`` sets the
        permitted and effective sets explicitly (a bit mask of ``1 << CAP_*``). ``mm`` is the guest
        memory (default: a fresh :class:`AddressSpace`); ``pid`` picks the pid (default: the next free).
        """
        creds = Credentials.for_user(uid, gid, tuple(groups), caps)
        with self.tasks_mu:
            tid = self._alloc_tid(pid)
            tg = ThreadGroup(self, tid, mm if mm is not None else AddressSpace(), None)
            t = Task(self, tid, tg, creds, ipc_ns if ipc_ns is not None else self.root_ipc_ns)
            tg.tasks.append(t)
            self.tasks[tid] = t
            self.thread_groups[tid] = tg
        self._task_created(t, None)
        return t

    def fork_task(self, parent: Task, mm: Any = None, tid: int | None = None) -> Task:
        """``fork()``: copy the calling process (see Task.fork)."""
        ptg = parent.tg
        if mm is None:
            pmm = ptg.mm
            mm = pmm.fork() if hasattr(pmm, "fork") else pmm
        with self.tasks_mu:
            ntid = self._alloc_tid(tid)
            tg = ThreadGroup(self, ntid, mm, ptg)
            with self.sig_mu:
                tg.actions = [SigAction(a.handler, a.flags, a.restorer, a.mask) for a in ptg.actions]
            with ptg.rlimit_mu:
                tg.rlimits = list(ptg.rlimits)
            t = Task(self, ntid, tg, parent.creds, parent.ipc_ns)
            t.sig_mask = parent.sig_mask
            tg.tasks.append(t)
            self.tasks[ntid] = t
            self.thread_groups[ntid] = tg
        self._task_created(t, parent)
        return t

    def clone_thread(self, parent: Task, tid: int | None = None) -> Task:
        """``clone(CLONE_THREAD|CLONE_VM|CLONE_SIGHAND|CLONE_FILES|CLONE_FS)``."""
        tg = parent.tg
        with self.tasks_mu:
            ntid = self._alloc_tid(tid)
            t = Task(self, ntid, tg, parent.creds, parent.ipc_ns)
            t.sig_mask = parent.sig_mask
            with self.sig_mu:
                tg.tasks.append(t)
            self.tasks[ntid] = t
        self._thread_created(t, parent)
        return t

    #: Hooks other packages register to set up per-task state: fn(task, parent_or_None).
    task_hooks: list[Callable[[Task, Task | None], None]] = []
    #: Hooks for new threads: fn(task, creating_thread).
    thread_hooks: list[Callable[[Task, Task], None]] = []

    def _task_created(self, t: Task, parent: Task | None) -> None:
        for hook in self.task_hooks:
            hook(t, parent)

    def _thread_created(self, t: Task, parent: Task) -> None:
        for hook in self.thread_hooks:
            hook(t, parent)

    def task_exited_locked(self, t: Task) -> None:
        """Bookkeeping when a thread has exited (caller holds sig_mu). The process's exit hooks (which
        take IPC locks, ordered before sig_mu) are queued and run by :meth:`run_exit_hooks`."""
        tg = t.tg
        if all(x.exited for x in tg.tasks):
            hooks, tg.exit_hooks = tg.exit_hooks, []
            self._deferred_exits.extend((tg, h) for h in hooks)
        ns = t.ipc_ns
        if ns is not self.root_ipc_ns:
            self._deferred_exits.append((tg, lambda _tg: self.ipc_ns_released(ns)))

    def run_exit_hooks(self) -> None:
        """Run queued process-exit hooks; callers must not hold sig_mu or any IPC lock."""
        while self._deferred_exits:
            try:
                tg, hook = self._deferred_exits.pop(0)
            except IndexError:
                return
            try:
                hook(tg)
            except Exception as e:  # pragma: no cover - cleanup must not fail the exit
                self.internal_error(tg.tasks[0], -1, (), e)

    def reap(self, tgid: int) -> None:
        """Forget a process whose every thread has exited, freeing its pid and tids for reuse (a
        platform whose host reuses ids calls this; in-process hosts may leave zombies around)."""
        with self.tasks_mu:
            tg = self.thread_groups.get(tgid)
            if tg is None:
                t = self.tasks.get(tgid)
                if t is not None and t.exited:
                    del self.tasks[tgid]
                return
            if not all(t.exited for t in tg.tasks):
                raise ValueError(f"process {tgid} still has live threads")
            for t in tg.tasks:
                if self.tasks.get(t.tid) is t:
                    del self.tasks[t.tid]
            del self.thread_groups[tgid]

    def find_task(self, tid: int) -> Task | None:
        t = self.tasks.get(tid)
        return t if t is not None and not t.exited else None

    def find_thread_group(self, tgid: int) -> ThreadGroup | None:
        tg = self.thread_groups.get(tgid)
        if tg is None or tg.exiting or all(t.exited for t in tg.tasks):
            return None
        return tg

    # -- IPC namespaces ---------------------------------------------------------------------------------
    def new_ipc_namespace(self, creator: Task | None = None) -> IPCNamespace:
        """A fresh IPC namespace with default limits (``CLONE_NEWIPC``)."""
        return IPCNamespace(self, creator_uid=creator.creds.euid if creator is not None else 0)

    def ipc_ns_released(self, ns: IPCNamespace) -> None:
        """A task left ``ns`` (exit or unshare): if no live task is in it any more, the namespace
        dies (``put_ipc_ns`` -> ``free_ipc_ns``): every SysV queue is removed as IPC_RMID would, and
        the POSIX queues no mount shows any more are dropped (open descriptors keep theirs alive).
        Callers hold no IPC lock and not sig_mu."""
        if ns is self.root_ipc_ns or ns.dead:
            return
        with self.tasks_mu:
            if any(t.ipc_ns is ns and not t.exited for t in self.tasks.values()):
                return
        ns.dead = True
        ns.msgqueues.destroy()
        if getattr(ns, "mqueue_fs", None) is not None:
            from mqsentry.fs.mqfs.filesystem import reap_dead_namespaces

            reap_dead_namespaces(self)

    def sysctl_read(self, name: str, ns: IPCNamespace | None = None) -> int:
        """Read a per-IPC-namespace sysctl such as ``kernel.msgmax`` or ``fs.mqueue.msg_max``."""
        return (ns or self.root_ipc_ns).sysctl_get(name)

    def sysctl_write(self, name: str, value: int, ns: IPCNamespace | None = None) -> None:
        """Write a per-IPC-namespace sysctl (range-checked as /proc would; SysError(EINVAL))."""
        (ns or self.root_ipc_ns).sysctl_set(name, value)

    # -- diagnostics ------------------------------------------------------------------------------------
    def signal_delivered(self, t: Task, info: SigInfo) -> None:
        cb = self.on_signal
        if cb is not None:
            cb(t, info)

    def internal_error(self, t: Task, nr: int, args: tuple[int, ...], exc: BaseException) -> int:
        """Record a sentry bug hit by a syscall; the guest sees EINVAL rather than a crashed host."""
        msg = f"internal error in syscall {nr} args={args} task={t!r}: " + "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.internal_errors.append(msg)
        log.error("%s", msg)
        return -EINVAL
