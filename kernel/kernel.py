"""The embedded kernel: tasks, pids, the root IPC namespace, the clock and the syscall table.

Linux counterpart: the global kernel state a syscall reaches through ``current`` (pid allocation in
kernel/pid.c, fork in kernel/fork.c, ``init_ipc_ns``). gVisor counterpart: pkg/sentry/kernel/kernel.go
(``Kernel``, ``TaskSet``, ``RootIPCNamespace``) and task_clone.go.

There is no hidden global state: every piece of state hangs off a :class:`Kernel`, so a host can run
several kernels side by side (tests create one per test). Nothing registers itself at import time:
what the kernel serves (its syscall table, the filesystem types mount(2) knows, the POSIX queue
registry of each IPC namespace) is given to the constructor by the composition root,
:mod:`mqsentry.boot`, whose ``Kernel`` is the one to use (``from mqsentry import Kernel``).

Lock order of package ``kernel`` (and the IPC packages under it), outermost first:
``Kernel.tasks_mu`` -> IPC registry locks (``msgqueue.Registry.ids.mu``, ``mqfs.MqueueFilesystem.mu``) -> IPC object
locks (``msgqueue.Queue.mu``, ``mq.Queue.mu``) -> ``Kernel.sig_mu`` -> ``waiter.Queue._mu`` and
``Task._cv`` (leaves). ``IPCNamespace.sysctl_mu``, ``KernelVFS._mu`` and ``UserBytes.mu`` are leaves.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mqsentry.abi.linux.errno import EINVAL
from mqsentry.fs.vfs.context import FilesystemType, KernelVFS, initial_context
from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.auth.user_namespace import UserNamespace
from mqsentry.kernel.ipc_namespace import IPCNamespace, PosixRegistryFactory
from mqsentry.kernel.ipc_sysctl import IPCSysctls
from mqsentry.kernel.ktime import Clock, RealtimeClock
from mqsentry.kernel.memory import AddressSpace
from mqsentry.kernel.mq.limits import UserBytes
from mqsentry.kernel.signals import SigAction, SigInfo, send_locked
from mqsentry.kernel.task import Task, ThreadGroup

log = logging.getLogger("mqsentry")

#: Signature of a syscall tracer: (task, nr, raw args, result) after each syscall.
Tracer = Callable[[Task, int, tuple[int, ...], int], None]

ARCHES = ("amd64", "arm64", "i386", "arm", "mips", "mipsel")

#: How many internal-error descriptions a kernel keeps (the count itself is never capped).
INTERNAL_LOG_MAX = 100

#: Called with every new :class:`Kernel` (see :func:`observe_kernels`).
_observers: list[Callable[[Kernel], None]] = []


def observe_kernels(fn: Callable[[Kernel], None] | None, remove: Callable[[Kernel], None] | None = None) -> None:
    """Add ``fn`` (and/or drop ``remove``) from the functions told about every Kernel created from now
    on. Test harnesses and fuzzers use it to check each kernel's :attr:`Kernel.internal_errors`."""
    if remove is not None and remove in _observers:
        _observers.remove(remove)
    if fn is not None:
        _observers.append(fn)


class SyscallDispatch(Protocol):
    """The numbered syscall table the kernel dispatches through (``mqsentry.syscalls.linux.SyscallTable``;
    gVisor ``kernel.SyscallTable``)."""

    @property
    def arch(self) -> str: ...

    @property
    def handlers(self) -> dict[int, Callable[..., int]]: ...

    def name(self, nr: int) -> str: ...

    def number(self, name: str) -> int: ...


class Kernel:
    """An embedded Linux kernel that serves message-queue syscalls.

    Guarded by ``tasks_mu``: ``tasks``, ``thread_groups``, ``_next_tid``. Guarded by ``sig_mu``: all
    signal state (see mqsentry.kernel.signals). Guarded by ``tasks_mu``: ``ipc_namespaces`` (the list; every
    IPC namespace whose POSIX queues may still need reaping). Immutable after construction: ``arch``,
    ``syscall_table``, ``posix_registry``, ``vfs``, ``mq_user_bytes``, ``root_ipc_ns``. ``clock``, ``tracer`` and
    ``on_signal`` may be replaced by the host at any time. Guarded by ``_internal_mu`` (a leaf):
    ``internal_errors`` (written under it; a plain int read without it) and ``internal_error_log``.

    The constructor takes its wiring explicitly (``syscall_table``, ``filesystem_types``,
    ``posix_registry``); :class:`mqsentry.boot.Kernel` supplies it.
    """

    def __init__(self, arch: str, clock: Clock | None, *, syscall_table: SyscallDispatch,
                 filesystem_types: Mapping[str, FilesystemType], posix_registry: PosixRegistryFactory) -> None:
        if arch not in ARCHES:
            raise ValueError(f"unsupported arch {arch!r}; choose one of {ARCHES}")
        if syscall_table.arch != arch:
            raise ValueError(f"syscall table is for {syscall_table.arch}, not {arch}")
        self.arch = arch
        self.clock: Clock = clock if clock is not None else RealtimeClock()
        self.syscall_table = syscall_table
        self.posix_registry = posix_registry
        #: The VFS: initial mount namespace, filesystem types, anonymous device numbers.
        self.vfs = KernelVFS(self.clock.now_ns(), filesystem_types)
        #: RLIMIT_MSGQUEUE charges (one user namespace, so one table for every IPC namespace).
        self.mq_user_bytes = UserBytes()
        self.tasks_mu = threading.Lock()
        self.sig_mu = threading.RLock()
        self.tasks: dict[int, Task] = {}
        self.thread_groups: dict[int, ThreadGroup] = {}
        self._next_tid = 1
        self.tracer: Tracer | None = None
        #: Called as on_signal(task, siginfo) after each delivery to a handler (under sig_mu).
        self.on_signal: Callable[[Task, SigInfo], None] | None = None
        #: ``pid_view(task, pid)``: ``pid`` (a pid of the kernel's root pid namespace) as ``task``'s pid
        #: namespace sees it, 0 when it is not visible there (Linux ``pid_vnr``/``pid_nr_ns``). None:
        #: one pid namespace (in-process tasks), every pid is seen as is. A platform serving host
        #: processes in nested pid namespaces installs its translation (may be replaced at any time).
        self.pid_view: Callable[[Task, int], int] | None = None
        #: How many internal errors (sentry bugs: a Python exception inside a syscall, an exit hook
        #: or a blocking path) this kernel has hit. Public and documented: a host, a test or a fuzzer
        #: checks that it stays 0. The guest still gets an errno (EINVAL) and the host no exception.
        self.internal_errors = 0
        #: The most recent internal errors' descriptions with tracebacks (at most INTERNAL_LOG_MAX).
        self.internal_error_log: list[str] = []
        self._deferred_exits: list[tuple[ThreadGroup, Callable[[ThreadGroup], None]]] = []
        self._internal_mu = threading.Lock()
        self.root_ipc_ns = IPCNamespace(self, 0, posix_registry)
        self.ipc_namespaces: list[IPCNamespace] = [self.root_ipc_ns]
        for fn in list(_observers):
            fn(self)

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
        files, fs_ctx, mnt_ns = initial_context(self.vfs)
        with self.tasks_mu:
            tid = self._alloc_tid(pid)
            tg = ThreadGroup(self, tid, mm if mm is not None else AddressSpace(), None)
            t = Task(self, tid, tg, creds, ipc_ns if ipc_ns is not None else self.root_ipc_ns, files, fs_ctx,
                     mnt_ns)
            tg.tasks.append(t)
            self.tasks[tid] = t
            self.thread_groups[tid] = tg
        tg.exit_hooks.append(_close_files_at_exit)
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
            # copy_files, copy_fs, copy_namespaces (the mount namespace is shared without CLONE_NEWNS).
            t = Task(self, ntid, tg, parent.creds, parent.ipc_ns, parent.fd_table.fork(), parent.fs_context.copy(),
                     parent.mnt_ns)
            t.sig_mask = parent.sig_mask
            tg.tasks.append(t)
            self.tasks[ntid] = t
            self.thread_groups[ntid] = tg
        tg.exit_hooks.append(_close_files_at_exit)
        return t

    def clone_thread(self, parent: Task, tid: int | None = None) -> Task:
        """``clone(CLONE_THREAD|CLONE_VM|CLONE_SIGHAND|CLONE_FILES|CLONE_FS)``."""
        tg = parent.tg
        with self.tasks_mu:
            ntid = self._alloc_tid(tid)
            # CLONE_FILES | CLONE_FS: the same objects; the mount namespace reference is per task.
            t = Task(self, ntid, tg, parent.creds, parent.ipc_ns, parent.fd_table, parent.fs_context, parent.mnt_ns)
            t.sig_mask = parent.sig_mask
            with self.sig_mu:
                tg.tasks.append(t)
            self.tasks[ntid] = t
        return t

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

    @property
    def exit_hooks_pending(self) -> bool:
        """Whether process-exit hooks are queued and not yet run (a dead process may still hold its
        files until then)."""
        return bool(self._deferred_exits)

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
                self.note_internal_error(f"exit hook of process {tg.tgid}", e)

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
        ns = IPCNamespace(self, creator.creds.euid if creator is not None else 0, self.posix_registry)
        with self.tasks_mu:
            self.ipc_namespaces.append(ns)
        return ns

    def ipc_ns_alive(self, ns: IPCSysctls) -> bool:
        """Whether IPC namespace ``ns`` still exists: the root always does, another while a live task
        is in it or a host pins it (Linux frees it with its last reference). Callers may hold IPC registry locks, so
        this reads the task table without ``tasks_mu`` (a snapshot)."""
        if ns is self.root_ipc_ns:
            return True
        if not isinstance(ns, IPCNamespace) or ns.dead:
            return False
        if ns.pins:
            return True  # a host holds references the sentry does not see (a platform's processes)
        return any(t.ipc_ns is ns and not t.exited for t in list(self.tasks.values()))

    def reap_dead_mqueue_namespaces(self) -> bool:
        """Drop the queues of every dead IPC namespace whose mqueue filesystem no mount shows; True if
        any namespace was reaped. Cold: runs when a namespace dies (:meth:`ipc_ns_released`) and, for
        namespaces whose last mount went away later, when a creation hits RLIMIT_MSGQUEUE. Callers
        hold no IPC lock."""
        with self.tasks_mu:
            spaces = list(self.ipc_namespaces)
            mount_namespaces = [t.mnt_ns for t in self.tasks.values() if not t.exited]
        dead = [ns for ns in spaces if ns.posix_queues.has_names() and not self.ipc_ns_alive(ns)]
        if not dead:
            return False
        mount_namespaces.append(self.vfs.init_mntns)
        mounted: set[int] = set()
        seen: set[int] = set()
        for mntns in mount_namespaces:
            if id(mntns) in seen:
                continue
            seen.add(id(mntns))
            mounted.update(id(m.fs) for m in mntns.mounts())
        reaped = False
        for ns in dead:
            if id(ns.posix_queues) not in mounted and not ns.posix_queues.shown_elsewhere():
                ns.posix_queues.drop_all_names()
                reaped = True
        with self.tasks_mu:
            # A dead namespace with no names left needs no more reaping.
            self.ipc_namespaces = [ns for ns in self.ipc_namespaces
                                   if not (ns.dead and not ns.posix_queues.has_names())]
        return reaped

    def ipc_ns_released(self, ns: IPCNamespace) -> None:
        """A task left ``ns`` (exit or unshare): if no live task is in it any more, the namespace
        dies (``put_ipc_ns`` -> ``free_ipc_ns``): every SysV queue is removed as IPC_RMID would, and
        the POSIX queues no mount shows any more are dropped (open descriptors keep theirs alive).
        Callers hold no IPC lock and not sig_mu."""
        if ns is self.root_ipc_ns or ns.dead or ns.pins:
            return
        with self.tasks_mu:
            if any(t.ipc_ns is ns and not t.exited for t in self.tasks.values()):
                return
        ns.dead = True
        ns.msgqueues.destroy()
        self.reap_dead_mqueue_namespaces()

    def sysctl_read(self, name: str, ns: IPCNamespace | None = None) -> int:
        """Read a per-IPC-namespace sysctl such as ``kernel.msgmax`` or ``fs.mqueue.msg_max``."""
        return (ns or self.root_ipc_ns).sysctl_get(name)

    def sysctl_write(self, name: str, value: int, ns: IPCNamespace | None = None) -> None:
        """Write a per-IPC-namespace sysctl (range-checked as /proc would; SysError(EINVAL))."""
        (ns or self.root_ipc_ns).sysctl_set(name, value)

    # -- signals ----------------------------------------------------------------------------------------
    def send_process_signal(self, tgid: int, signo: int, code: int, pid: int, uid: int, value: int,
                            sender_ns: UserNamespace | None = None) -> bool:
        """Queue ``signo`` for process ``tgid`` as the kernel itself does (no permission check; Linux
        ``do_send_sig_info`` for an mq notification). False if there is no such live process.

        ``pid`` is a root-namespace pid, shown as the target's pid namespace sees it (0 if not
        there); ``uid`` is as the caller computed it, and with ``sender_ns`` (the sending task's user
        namespace) it is mapped on as ``send_signal_locked`` does when sender and target live in
        different user namespaces: ``from_kuid_munged(target_ns, make_kuid(sender_ns, uid))``."""
        tg = self.find_thread_group(tgid)
        if tg is None:
            return False
        with self.sig_mu:
            leader = tg.leader
            if leader is None:
                return False
            view = self.pid_view
            if view is not None:
                pid = view(leader, pid)
            target_ns = leader.creds.user_ns
            if sender_ns is not None and sender_ns is not target_ns:
                uid = target_ns.map_from_kuid_munged(sender_ns.map_to_kuid(uid))
            send_locked(leader, SigInfo(signo, code=code, pid=pid, uid=uid, value=value), True)
        return True

    # -- diagnostics ------------------------------------------------------------------------------------
    def signal_delivered(self, t: Task, info: SigInfo) -> None:
        cb = self.on_signal
        if cb is not None:
            cb(t, info)

    def internal_error(self, t: Task, nr: int, args: tuple[int, ...], exc: BaseException) -> int:
        """Record a sentry bug hit by a syscall; the guest sees EINVAL rather than a crashed host.
        The bug is counted in :attr:`internal_errors`."""
        self.note_internal_error(f"syscall {nr} args={args} task={t!r}", exc)
        return -EINVAL

    def note_internal_error(self, where: str, exc: BaseException) -> None:
        """Count and log a sentry bug that was contained (the caller recovers and carries on)."""
        msg = f"internal error in {where}: " + "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))
        with self._internal_mu:
            self.internal_errors += 1
            self.internal_error_log.append(msg)
            del self.internal_error_log[:-INTERNAL_LOG_MAX]
        log.error("%s", msg)


def _close_files_at_exit(tg: ThreadGroup) -> None:
    """``exit_files``: the last thread of the process has exited; close every fd (flush + decref)."""
    if tg.tasks:
        leader = tg.tasks[0]
        leader.fd_table.close_all(leader)


__all__ = ["Kernel", "SyscallDispatch", "Tracer", "ARCHES"]
