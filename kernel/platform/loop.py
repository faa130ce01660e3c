"""The platform's event loop: serve the seccomp notifications of a real process tree with the sentry.

Linux counterpart: none in the kernel; this is the supervisor side of seccomp user notification
(kernel/seccomp.c ``seccomp_do_user_notification``). gVisor counterpart: the task goroutines of
pkg/sentry/kernel (task_run.go) driving syscalls that a pkg/sentry/platform trapped; here the
"platform" is seccomp user notification and only the message-queue syscalls are trapped.

Greenlets and ownership
-----------------------
Every served call runs on the loop's one OS thread (:mod:`parking`). The loop greenlet that *owns the
loop* polls the listener (plus a wake eventfd and one pidfd per served process), RECVs a
notification, maps its TID to a sentry task and runs the handler inline, then SENDs the result. Most
calls finish without sleeping, so the fast path has no switch and no greenlet creation at all. When a
handler sleeps (the engines call ``Task.block``, which goes to the task's ``sleeper``), the call's
greenlet registers it in the parked set and hands the loop to an idle loop greenlet (a new one if
none is idle); the sleeping greenlet is now the *parked call's*. Wake-ups, deadlines and signal
scans resume it on the owner's turn; it then SENDs its own reply and joins the idle pool. A parked
call costs a greenlet (its saved stack, a few KiB), never an OS thread: no limit below the host's
own memory. DESIGN.md ("Parking") explains why greenlets and not continuations.

Signals (docs/platform-rules.md §1): the filter uses WAIT_KILLABLE_RECV, so once the sentry has received a
notification only fatal signals reach the target. While calls are parked the owner scans
/proc/<tid>/status every ``scan_period`` and, for a thread the host kernel would interrupt, makes the
sentry task's ``block()`` return EINTR (``recalc_sigpending(force=True)``, whose kick resumes it); the engine then
returns -ERESTARTNOHAND (msg*) or -ERESTARTSYS (mq_*), which is SENT as is: the host's signal code
turns it into EINTR or a restart exactly as for a native call. Host signals never enter the sentry's
own signal state: the sentry does not know the target's handlers and masks.

Commit/undo around SEND (docs/platform-rules.md §3): every sentry task of a served process has an
undo log, ``task.undo`` (a list of callables). An engine operation that takes something the caller may
never receive appends its undo there (msgrcv: put the dequeued message back, see
``mqsentry.kernel.msgqueue.queue.Queue.unreceive``). After the handler, the call's SEND decides: delivered,
the log is dropped (commit); ENOENT (the target died after the engine acted), the actions run. A call
that parked does the same when it is resumed, and a dead process's parked calls are interrupted and
run to their reply and undo at once (``_release_parked``), so a message is back in its queue before
the next notification is served. The platform cannot tell a target killed just before the
engine dequeued (native: no loss) from one killed just after (native: lost), so it always undoes.

Identity (issue 9): a TID is trusted only while it is alive. Every adopted non-leader thread has a
thread pidfd (PIDFD_THREAD) in the poll set, so its sentry task, credentials and descriptor cache are
dropped when it exits, before a notification from a reused TID can be served (pidfd events are
processed before the listener's in a poll round). Credentials come from /proc/<tid>/status, in the
thread's user namespace as mirrored by :mod:`userns` (ids and capabilities as ``ns_capable`` counts
them), re-read after a credential-changing call by that thread and after an exec by *any* thread of
the group; every /proc read is followed by a check that the notification is still valid.

Locks: none of the platform's own. Everything of :class:`Platform` (the task maps ``_by_tid``,
``_groups``, ``_pidfds``, ``_thread_fds``, the parked set and its records, ``stats``) is touched on the
loop's OS thread only, by whichever loop greenlet runs; greenlets switch only at the points
:mod:`parking` lists, never holding a lock (two greenlets of one thread on one ``threading.Lock``
would deadlock it). Other threads touch only ``_stopping`` (:meth:`Platform.stop`, a flag) and
``Parking.ready_q`` (wake-ups from the FUSE thread); a call handed to a thread of its own by a
``takeover`` hook (a mount, :mod:`mqmount`) SENDs its reply from there and touches nothing else.
``Kernel.sig_mu`` is taken for the forced sigpending flag of an interrupt and its reset at unpark,
both on the loop thread, so a call that has left the parked set is never interrupted.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mqsentry.abi.linux.errno import EINTR, ENOSYS
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.kernel import Kernel
from mqsentry.kernel.platform import memory, pidns, procfs, userns
from mqsentry.kernel.platform.calls import I386_HOOK_NR, I386_OBSERVED_AS, OBSERVED
from mqsentry.kernel.platform.parking import Parked, Parking
from mqsentry.kernel.platform.seccomp import AUDIT_ARCH_I386, Listener, Notification
from mqsentry.kernel.task import Task
from mqsentry.syscalls.linux import table_for

log = logging.getLogger("mqsentry.platform")

_OBSERVED = frozenset(OBSERVED)
#: execve and execveat: the new image's credentials apply to the whole group, whichever thread exec'd
#: (de_thread gives the exec'ing thread the leader's TID).
_EXEC = frozenset((59, 322))
#: Pending execs kept before the finished ones are looked for (see Platform._prune_exec_pending).
_EXEC_PENDING_PRUNE = 64
#: pidfd_open's PIDFD_THREAD (O_EXCL): a pidfd for one thread, readable when that thread exits.
PIDFD_THREAD = os.O_EXCL


_POLLIN = select.EPOLLIN
_POLLHUP = select.EPOLLHUP | select.EPOLLERR


@dataclass(slots=True)
class Group:
    """A served host process: its sentry thread group leader and a pidfd that reports its exit.
    Touched on the loop's OS thread only (no lock)."""

    tgid: int
    leader: Task
    pidfd: int
    tasks: dict[int, Task] = field(default_factory=dict)


class Platform:
    """Serves one listener's process tree with one sentry :class:`Kernel` (one IPC namespace).

    Hooks for other modules: ``prepare`` maps a syscall number to ``(platform, notif, task) -> cleanup``,
    run before the handler (mq_* map the target's fd to the sentry description) with the cleanup run
    after it; ``replies`` maps a syscall number to ``(platform, notif, task, result) -> bool`` that
    replies itself (mq_open installs an fd with ADDFD); ``post`` actions queued during a call (see
    :meth:`after_reply`) run after its SEND (signals for the target).

    No lock: every field is touched on the loop's OS thread only (by whichever loop greenlet runs),
    except ``_stopping``, which :meth:`stop` sets from any thread (a flag the loop reads each round),
    and :meth:`tgid_of`'s single ``_by_tid`` lookup from the FUSE thread (atomic under the GIL).
    """

    def __init__(self, kernel: Kernel, listener: Listener, *, scan_period: float = 0.005,
                 max_idle: int = 8,
                 killable_recv: bool = True, users: userns.HostUserNamespaces | None = None) -> None:
        self.kernel = kernel
        self.listener = listener
        #: The filter has SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (launch.spawn's default): a signal
        #: sent to a caller whose notification we hold does not interrupt its call.
        self.killable_recv = killable_recv
        self.scan_period = scan_period
        #: The sentry's own user namespace as an OwnerNamespace, for callers that want a thread's
        #: capabilities there precomputed (serving itself uses the mirrors below and has_cap_in).
        self.owner_ns = userns.OwnerNamespace()
        #: Host user namespaces mirrored as sentry ones (ids at the syscall boundary, userns.py).
        self.users = users if users is not None else userns.HostUserNamespaces()
        self._own_users = users is None
        #: Pids of threads in nested pid namespaces (pidns.py); ``kernel.pid_view`` is installed when
        #: the first such thread is served, so the one-namespace case pays nothing.
        self.pids = pidns.PidViews()
        self.max_idle = max_idle
        self.handlers = kernel.syscall_table.handlers
        # The listener's hot methods, bound once (a bound-method lookup per call costs ~0.1 µs).
        self._send = listener.send
        self._id_valid = listener.id_valid
        #: What serves i386 calls: the i386 table over the same kernel (its tasks, its namespaces).
        self.handlers_i386 = table_for("i386").handlers
        self.replies: dict[int, Callable[[Platform, Notification, Task, int], bool]] = {}
        self.prepare: dict[int, Callable[[Platform, Notification, Task], Callable[[], None] | None]] = {}
        self.on_process_exit: list[Callable[[int], None]] = []
        #: Calls seen in the filter only to be picked out (mqmount.py): ``screen[nr](notif)`` says
        #: whether to serve it; if not, it continues natively before any task lookup. A served one
        #: goes to ``takeover[nr](platform, notif, task)``, which returns the result or None (continue).
        self.screen: dict[int, Callable[[Notification], bool]] = {}
        self.takeover: dict[int, Callable[[Platform, Notification, Task], Any]] = {}
        #: ``tid -> IPC namespace`` (ipcns.py), asked when a thread is new or was seen in unshare or
        #: setns; None: every thread is in the kernel's root namespace.
        self.ns_of: Callable[[int], Any] | None = None
        #: Backends to shut down in :meth:`close` (before the listener).
        self.closers: list[Callable[[], None]] = []
        self._stopping = False
        #: Set by the owner as the loop ends (after every parked call has been run to its reply).
        self._stopped = False
        self._by_tid: dict[int, Task] = {}
        self._groups: dict[int, Group] = {}
        self._dirty: set[int] = set()
        #: tgid -> TID of a thread seen calling execve (or execveat) whose exec is not known to be over:
        #: until it is, every thread of the group is re-read at each call (see :meth:`_exec_over`).
        self._exec_pending: dict[int, int] = {}
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        # epoll, not poll: every adopted thread adds a pidfd, and a poll() over a thousand fds per
        # served call would cost more than the call.
        self._poll = select.epoll()
        self._poll.register(listener.fd, select.EPOLLIN)
        self._poll.register(self._wake_fd, select.EPOLLIN)
        self._pidfds: dict[int, int] = {}  # pidfd -> tgid
        #: Thread pidfds of adopted non-leader threads: pidfd -> tid, and tid -> pidfd.
        self._thread_fds: dict[int, int] = {}
        self._fd_of_thread: dict[int, int] = {}
        #: Hooks run with a TID whose thread has gone (per-TID caches of backends).
        self.on_thread_exit: list[Callable[[int], None]] = []
        #: TIDs whose exit the loop cannot see (no PIDFD_THREAD): re-read at every call, never cached.
        self.untracked: set[int] = set()
        self._last_scan = 0.0
        self._scan_pos = 0
        #: A notification received before serve() (owner only).
        self._pending: Notification | None = None
        self.stats = {"served": 0, "parked": 0, "interrupted": 0, "lost_replies": 0, "undone": 0}
        #: The greenlets: loop owner, idle pool, parked calls, ready list, deadlines.
        self._parking = Parking(kernel, self._wake_fd, listener.id_valid, self.stats, max_idle)
        #: The parked calls (the record of each sleeping served call; loop thread only).
        self._parked = self._parking.parked

    # -- public ------------------------------------------------------------------------------------
    def serve(self, first: Notification | None = None) -> None:
        """Serve until no target task is left (the listener reports POLLHUP), every call on the calling
        thread. ``first``: a notification already received (by a caller that waited for the first
        served call before building the platform), dispatched before any other."""
        self._pending = first
        self._stopped = False
        self._parking.run_loop(self._own_loop, lambda: self._stopped)

    def stop(self) -> None:
        """Ask the loop to stop (from any thread); parked calls are interrupted."""
        self._stopping = True
        os.eventfd_write(self._wake_fd, 1)

    def close(self) -> None:
        for closer in self.closers:
            closer()
        for pfd in list(self._pidfds) + list(self._thread_fds):
            os.close(pfd)
        self._pidfds.clear()
        self._thread_fds.clear()
        self._fd_of_thread.clear()
        os.close(self._wake_fd)
        self._poll.close()
        self.listener.close()
        if self._own_users:
            self.users.close()

    def tasks(self) -> dict[int, Task]:
        """Live sentry tasks by host TID (a snapshot)."""
        return dict(self._by_tid)

    # -- the loop ---------------------------------------------------------------------------------------
    def _own_loop(self, me: Any) -> bool:
        """Poll and dispatch while loop greenlet ``me`` owns the loop. True: a call it dispatched
        parked and handed the loop off (that call has since completed); False: stopping."""
        park = self._parking
        parked = park.parked
        ready = park.ready_q
        poll = self._poll.poll
        listener_fd = self.listener.fd
        wake_fd = self._wake_fd
        recv = self.listener.recv
        pending, self._pending = self._pending, None
        if pending is not None:
            self._dispatch(pending)
            if park.owner is not me:
                return True
        while not self._stopping:
            if ready:
                park.run_ready()  # woken parked calls reply before new calls are served
            timeout = park.poll_timeout(self.scan_period) if parked else -1
            try:
                events = poll(timeout)
            except InterruptedError:
                continue
            if len(events) > 1:
                # Process exits first: a dead receiver's parked call must be gone before the next
                # notification (a send) could hand it a message (see _group_exited_tgid).
                events.sort(key=lambda e: e[0] == listener_fd)
            for fd, ev in events:
                if fd == listener_fd:
                    if ev & _POLLIN:
                        n = recv()
                        if n is not None:
                            self._dispatch(n)
                            if park.owner is not me:
                                return True
                    elif ev & _POLLHUP:
                        # No task uses the filter any more: everything is done.
                        self._stopping = True
                elif fd == wake_fd:
                    try:
                        os.eventfd_read(wake_fd)
                    except BlockingIOError:
                        pass
                else:
                    self._group_exited(fd)
            if parked:
                park.fire_timers()
                now = time.monotonic()
                if now - self._last_scan >= self.scan_period:
                    self._last_scan = now
                    self._scan()
        self._release_all()
        self._stopped = True
        return False

    # -- dispatch ------------------------------------------------------------------------------------
    def _dispatch(self, n: Notification) -> None:
        nr = n.nr
        handlers = self.handlers
        hook_n = n
        if n.arch == AUDIT_ARCH_I386:
            observed_as = I386_OBSERVED_AS.get(nr)
            if observed_as is not None:
                self._observed(n.as_nr(observed_as))
                return
            handlers = self.handlers_i386
            hook_n = n.as_nr(I386_HOOK_NR.get(nr, -1))
        elif nr in _OBSERVED:
            self._observed(n)
            return
        screen = self.screen.get(hook_n.nr)
        if screen is not None and not screen(n):
            self.listener.send_continue(n.id)  # not one the sentry serves (another fs type)
            return
        tid = n.pid
        nid = n.id
        t = self._by_tid.get(tid)
        if t is None or tid in self._dirty:
            t = self._task_for(tid, nid)
            if t is None:
                self._send(nid, 0, -ENOSYS)  # the thread is gone; the reply fails harmlessly
                return
        ctx = memory.context()
        ctx.tid = tid
        ctx.nid = nid
        ctx.nr = nr
        ctx.validate = self._id_valid
        post: list[Callable[[], None]] = []
        ctx.post = post
        take = self.takeover.get(hook_n.nr)
        if take is not None:
            self._take_over(take, hook_n, t, ctx)
            return
        fn = handlers.get(nr)
        a = n.args
        prep = self.prepare.get(hook_n.nr)
        cleanup = None
        try:
            if prep is not None:
                cleanup = prep(self, hook_n, t)
            ret = -ENOSYS if fn is None else fn(t, a[0], a[1], a[2], a[3], a[4], a[5])
        except SysError as e:
            ret = -e.errno
        except Exception as e:  # a sentry bug must not take the loop down
            ret = self.kernel.internal_error(t, nr, a, e)
        if cleanup is not None:
            cleanup()
        ctx.post = None
        ctx.validate = None
        if -517 < ret < -511:
            ret = self._restart_value(ctx.parked, ret)
        tracer = self.kernel.tracer
        special = self.replies.get(hook_n.nr)
        replied = False
        # The tracer decodes x86_64 calls only (not i386 yet): hook_n is n for x86_64 calls.
        if tracer is not None and special is None and hook_n is n:
            tracer(t, nr, a, ret)
        self.stats["served"] += 1
        if special is not None:
            # A reply hook may return something else than the sentry's result (mq_open: the fd the
            # target got, not the sentry's); it traces that itself (see :meth:`trace`).
            ctx.traced = False
            replied = special(self, hook_n, t, ret)
            if tracer is not None and not ctx.traced and hook_n is n:
                tracer(t, nr, a, ret)
        if replied:
            sent = True
        else:
            sent = self._send(nid, ret, 0) if ret >= 0 else self._send(nid, 0, ret)
            if not sent:
                self.stats["lost_replies"] += 1
        undo = t.undo
        if undo:
            # Commit/undo around SEND (docs/platform-rules.md §3): the target died after the engine
            # took its message, so give the message back. A successful SEND commits.
            if not sent:
                self._undo(undo)
            undo.clear()
        ctx.parked = None
        for action in post:
            try:
                action()
            except Exception:  # pragma: no cover - a vanished target
                log.debug("post-reply action failed", exc_info=True)

    def _take_over(self, take: Callable[[Platform, Notification, Task], Any], n: Notification, t: Task,
                   ctx: memory.CallContext) -> None:
        """A call served by a module of its own (mount of mqueue). ``take`` returns the result, None
        to let the host run the call, or a function that computes the result off the loop (its
        thread replies; a mount may wait on file systems the program serves itself)."""
        try:
            ret = take(self, n, t)
        except SysError as e:
            ret = -e.errno
        except Exception as e:  # a sentry bug must not take the loop down
            ret = self.kernel.internal_error(t, n.nr, n.args, e)
        ctx.post = None
        ctx.validate = None
        self.stats["served"] += 1
        if ret is None:
            self.listener.send_continue(n.id)
        elif callable(ret):
            work = ret
            listener, kernel = self.listener, self.kernel

            def finish() -> None:
                # Off the loop's thread: only the listener (an ioctl) and the kernel's own locked
                # error count are touched, nothing of the Platform.
                try:
                    res = int(work())
                except Exception as e:
                    res = kernel.internal_error(t, n.nr, n.args, e)
                if res >= 0:
                    listener.send(n.id, res, 0)
                else:
                    listener.send(n.id, 0, res)

            threading.Thread(target=finish, name="mqsentry-takeover", daemon=True).start()
        else:
            self._reply(n.id, ret)

    def _reply(self, nid: int, ret: int) -> None:
        if not (self.listener.send(nid, ret, 0) if ret >= 0 else self.listener.send(nid, 0, ret)):
            self.stats["lost_replies"] += 1

    def _restart_value(self, parked: list[Parked] | None, ret: int) -> int:
        """A handler returned -ERESTART*: only a call the scan interrupted for a host signal may pass
        it on (the host's signal code then turns it into EINTR or a restart). Any other is a sentry
        state leak and must not reach the program (it would see errno 512..516)."""
        if parked is not None and any(p.interrupted for p in parked):
            return ret
        log.error("restart code %d without a host signal: replying EINTR", ret)
        self.stats["restart_leaks"] = self.stats.get("restart_leaks", 0) + 1
        return -EINTR

    def _observed(self, n: Notification) -> None:
        """A credential-changing call: the caller's credentials are re-read at its next served call
        (after an exec, every thread's of its group: the image may have changed them)."""
        tid = n.pid
        if tid in self._by_tid:
            self._dirty.add(tid)  # an unknown thread is read afresh at its first call anyway
        if n.nr in _EXEC:
            t = self._by_tid.get(tid)
            tgid = t.tg.tgid if t is not None else None
            if tgid is None:
                st = procfs.read_status(tid)
                tgid = st.tgid if st is not None else None
            if tgid is not None:
                # Recorded for a process the sentry does not know yet too: its old leader may make
                # its first served call before de_thread, and that read must not stand for the image.
                self._exec_pending[tgid] = tid
                self._mark_group(tgid)
                if len(self._exec_pending) > _EXEC_PENDING_PRUNE:
                    self._prune_exec_pending()
        self.listener.send_continue(n.id)

    def _mark_group(self, tgid: int) -> None:
        """Every known thread of process ``tgid`` is re-read at its next served call."""
        grp = self._groups.get(tgid)
        if grp is not None:
            self._dirty.update(grp.tasks)

    def _prune_exec_pending(self) -> None:
        """Forget the pending execs that are over although no call of their process said so (a
        program that execs and never makes a served call): the map stays as small as the number of
        live processes with an exec in flight."""
        for tgid, pending in list(self._exec_pending.items()):
            if not os.path.exists(f"/proc/{tgid}/task/{pending}"):
                del self._exec_pending[tgid]
                self._mark_group(tgid)

    def _exec_over(self, tgid: int, tid: int) -> bool:
        """Whether process ``tgid``'s pending exec is over, as seen at a call of ``tid``.

        The credentials of the new image are the exec'ing thread's, and its TID becomes the leader's
        only at the end of de_thread. Until then the other threads, the old leader included, may still
        make calls: a re-read then gives *their* credentials, so it must not end the re-reading (the
        new image would inherit a cached root leader's credentials). The exec is over when the
        exec'ing thread calls again (the exec failed, or it was the leader and this is the new image)
        or when its TID is gone from the group (de_thread has given the new image the leader's TID);
        the whole group is then re-read once more."""
        pending = self._exec_pending.get(tgid)
        if pending is None:
            return True
        if pending != tid and os.path.exists(f"/proc/{tgid}/task/{pending}"):
            return False
        del self._exec_pending[tgid]
        self._mark_group(tgid)
        return True

    def _undo(self, undo: list[Callable[[], None]]) -> None:
        """Run a call's undo actions (its reply could not be delivered), newest first."""
        for action in reversed(undo):
            try:
                action()
            except Exception:  # an engine bug must not take the loop down
                log.exception("undo action failed")
        self.stats["undone"] += len(undo)

    # -- host threads -> sentry tasks ------------------------------------------------------------------
    def _task_for(self, tid: int, nid: int) -> Task | None:
        """The sentry task of host thread ``tid`` making notification ``nid`` (None: it is gone): the
        known one, or one made or refreshed (credentials, IPC namespace) from /proc when the thread is
        new or marked dirty. Whatever is read from /proc is trusted only once ``nid`` is checked still
        valid after it."""
        t = self._by_tid.get(tid)
        if t is not None and tid not in self._dirty:
            return t
        t = self._refresh_task(tid, nid)
        ns_of = self.ns_of
        if t is None or ns_of is None:
            return t
        ns = ns_of(tid)
        if ns is None or not self.listener.id_valid(nid):
            return None  # gone: what /proc said may be another thread's
        old = t.ipc_ns
        if old is not ns:
            t.ipc_ns = ns  # the task's own driver moves it (unshare/setns/clone ran on the host)
            self.kernel.ipc_ns_released(old)
        return t

    def _refresh_task(self, tid: int, nid: int) -> Task | None:
        t = self._read_task(tid, nid)
        if t is not None:
            uns = t.creds.user_ns
            if ((uns.parent is not None and not (uns.uid_map and uns.gid_map))
                    or (self._exec_pending and not self._exec_over(t.tg.tgid, tid))):
                # Read again at its next call: its user namespace's maps are not written yet, or
                # its process's exec is pending (see _exec_over).
                self._dirty.add(tid)
        return t

    def _read_task(self, tid: int, nid: int) -> Task | None:
        t = self._by_tid.get(tid)
        if tid in self.untracked:
            self._dirty.add(tid)  # stays dirty: checked again at its next call
        st = procfs.read_status(tid)
        if st is None:
            return None
        creds = st.creds
        uns = self.users.of_thread(tid)
        if uns is None:
            return None
        if uns is not creds.user_ns:
            creds = replace(creds, user_ns=uns)
        nested_pid = self.pids.record(tid, st.tgid, st.nspid, st.nstgid)
        if not self.listener.id_valid(nid):
            return None  # the TID may have been reused between the notification and the reads
        if nested_pid and self.kernel.pid_view is None:
            self.kernel.pid_view = self._pid_view
        if tid not in self.untracked and (uns.parent is None or (uns.uid_map and uns.gid_map)):
            self._dirty.discard(tid)  # else it stays dirty (and _refresh_task marks a new task)
        if t is not None:
            if t.tg.tgid == st.tgid:
                t.creds = creds  # the task's own driver replaces its credentials
                return t
            self._forget_task(tid)  # the TID now belongs to another process
        grp = self._groups.get(st.tgid)
        if grp is not None and not self._group_alive(grp):
            self._group_exited_tgid(grp.tgid)
            grp = None
        k = self.kernel
        if grp is None:
            self._reap_ids(st.tgid)
            try:
                pidfd = os.pidfd_open(st.tgid)
            except OSError:
                return None
            leader = k.new_task(pid=st.tgid, mm=memory.ProcessMemory(st.tgid))
            # The leader's own credentials are read when it makes a call; until then it has the
            # caller's (a process's threads normally share them).
            self._adopt(leader, creds)
            grp = Group(st.tgid, leader, pidfd)
            grp.tasks[st.tgid] = leader
            self._groups[st.tgid] = grp
            self._pidfds[pidfd] = st.tgid
            self._poll.register(pidfd, select.EPOLLIN)
            # Registered whichever thread came first, so the leader's own first call finds it.
            self._by_tid[st.tgid] = leader
            if tid == st.tgid:
                return leader
            self._dirty.add(st.tgid)  # the leader's credentials are its own: read them at its call
        self._reap_ids(tid)
        tfd = -1
        try:
            tfd = os.pidfd_open(tid, PIDFD_THREAD)
        except OSError as e:
            if e.errno != errno.EINVAL:
                return None  # the thread is gone
            # Linux < 6.9 has no thread pidfds: the thread's exit cannot be seen, so its identity
            # is re-read (and re-validated) at every call instead, and nothing is cached for it.
        th = k.clone_thread(grp.leader, tid=tid)
        self._adopt(th, creds)
        grp.tasks[tid] = th
        self._by_tid[tid] = th
        if tfd >= 0:
            self._thread_fds[tfd] = tid
            self._fd_of_thread[tid] = tfd
            self._poll.register(tfd, select.EPOLLIN)
        else:
            self.untracked.add(tid)
            self._dirty.add(tid)
        return th

    def _pid_view(self, t: Task, pid: int) -> int:
        """Kernel.pid_view: ``pid_vnr`` for a served thread (pidns.py)."""
        return self.pids.pid_vnr(t.tid, pid)

    def _adopt(self, t: Task, creds: Any) -> None:
        # Its sleeps park the call's greenlet and let the loop serve on (Task.sleeper protocol).
        t.sleeper = self._parking
        # The undo log of the task's current call (see _dispatch): a host thread has one call in
        # flight at a time, so one list per task, emptied after every reply.
        t.undo = []
        t.creds = creds
        with self.kernel.sig_mu:
            t.tg.signal_sink = self._host_signal

    # -- signals to the host ---------------------------------------------------------------------------
    def _host_signal(self, target: Task, info: Any, group: bool) -> None:
        """ThreadGroup.signal_sink: a signal the sentry generates for a served process (mq_notify
        SIGEV_SIGNAL) is queued to the host process at once, before the triggering call's reply.

        Linux queues it inside the call (ipc/mqueue.c ``__do_notify``), so when the sender is the
        registered process its handler runs as mq_send returns. The caller is waiting for our reply;
        with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV a non-fatal signal that arrives after the
        notification was received only turns that wait killable (kernel/seccomp.c
        ``should_sleep_killable``), so the signal stays pending, the reply completes the call, and
        the host delivers the signal on its way back to user space -- never as EINTR of a later call.
        Without that flag a pending signal would interrupt the very call that raised it, so the signal
        is queued after the reply instead ("reply before side effects": see :meth:`after_reply`)."""
        from mqsentry.kernel.platform import seccomp

        tgid, sig, raw = target.tg.tgid, info.signo, self._host_siginfo(target, info)

        def queue() -> None:
            try:
                seccomp.rt_sigqueueinfo(tgid, sig, raw)
            except OSError:
                pass  # the process is gone

        if self.killable_recv:
            queue()
        else:
            self.after_reply(queue)

    @staticmethod
    def _host_siginfo(target: Task, info: Any) -> bytes:
        """``info`` packed so that the host shows the target what the sentry computed.

        The host maps si_uid once more on delivery (kernel/signal.c ``send_signal_locked``: from the
        sender's -- the sentry's -- user namespace into the target's), so the value the target must
        see is mapped back first: the kernel id that the target's namespace shows as that value, or,
        for an overflow id its namespace does not map, a kernel id it does not map either (shown as
        the overflow id). si_pid goes as is: the host keeps it only if the sentry is visible in
        the target's pid namespace (for a target in a nested pid namespace it reads 0, see DESIGN.md)."""
        ns = target.creds.user_ns
        if ns.parent is None:
            return bytes(info.pack())
        # An unmapped value stays NO_ID: the host's make_kuid of (uid_t)-1 is invalid in every
        # namespace, which from_kuid_munged shows as the overflow id.
        return bytes(replace(info, uid=ns.map_to_kuid(info.uid)).pack())

    def _group_alive(self, grp: Group) -> bool:
        p = select.poll()
        p.register(grp.pidfd, select.POLLIN)
        return not p.poll(0)

    def _reap_ids(self, tid: int) -> None:
        """Free ``tid`` in the sentry: the host reused it, so whatever sentry task or group still
        holds it stands for a dead host thread."""
        if tid in self._groups:
            self._group_exited_tgid(tid)
        if tid in self._by_tid:
            self._forget_task(tid)
        try:
            self.kernel.reap(tid)
        except ValueError:
            log.warning("host reused id %d while the sentry still has it live", tid)

    def _forget_task(self, tid: int) -> None:
        self.untracked.discard(tid)
        tfd = self._fd_of_thread.pop(tid, None)
        if tfd is not None:
            self._thread_fds.pop(tfd, None)
            self._poll.unregister(tfd)
            os.close(tfd)
        for hook in self.on_thread_exit:
            hook(tid)
        self._dirty.discard(tid)
        t = self._by_tid.pop(tid, None)
        if t is None:
            return
        grp = self._groups.get(t.tg.tgid)
        if grp is not None:
            grp.tasks.pop(tid, None)
        if t is not t.tg.leader:
            with self.kernel.sig_mu:
                if not t.exited:
                    t.exited = True
                    self.kernel.task_exited_locked(t)
            self.kernel.run_exit_hooks()

    def _group_exited(self, pidfd: int) -> None:
        tgid = self._pidfds.get(pidfd)
        if tgid is not None:
            self._group_exited_tgid(tgid)
            return
        tid = self._thread_fds.get(pidfd)
        if tid is not None:
            self._thread_exited(tid)

    def _thread_exited(self, tid: int) -> None:
        """A non-leader thread exited while its process lives on: its parked call (if it was killed
        with the group, or by an exec elsewhere) is released, and everything the sentry keeps for its
        TID goes, so a thread that reuses the TID inherits nothing."""
        self._release_parked(None, tid)
        self._forget_task(tid)

    def _group_exited_tgid(self, tgid: int) -> None:
        """The host process is gone: its sentry process exits (exit hooks close its files and drop
        per-process state) and its ids are freed for reuse."""
        self._exec_pending.pop(tgid, None)
        grp = self._groups.pop(tgid, None)
        if grp is None:
            return
        self._release_parked(tgid)
        self._poll.unregister(grp.pidfd)
        self._pidfds.pop(grp.pidfd, None)
        os.close(grp.pidfd)
        for tid, t in grp.tasks.items():
            if tid != tgid and tid in self._fd_of_thread:
                self._forget_task(tid)
            if self._by_tid.get(tid) is t:
                del self._by_tid[tid]
            self._dirty.discard(tid)
            for hook in self.on_thread_exit:
                hook(tid)
        grp.leader.exit_group(0)
        try:
            self.kernel.reap(tgid)  # the host may reuse these ids
        except ValueError:
            log.warning("process %d exited on the host but a sentry thread is still live", tgid)
        for hook in self.on_process_exit:
            hook(tgid)

    # -- signals -------------------------------------------------------------------------------------
    #: Parked calls examined per scan: a scan reads /proc once per call, so with many calls parked
    #: they are examined round-robin, a batch per period, and the loop keeps serving in between
    #: (a signal's latency grows with the number parked, the loop's time spent scanning does not).
    SCAN_BATCH = 32

    def _scan(self) -> None:
        """Apply the signal rule of docs/platform-rules.md §1 to the parked calls (a batch of them)."""
        parked = list(self._parked)
        if len(parked) > self.SCAN_BATCH:
            pos = self._scan_pos % len(parked)
            batch = parked[pos:pos + self.SCAN_BATCH]
            self._scan_pos = pos + len(batch)
            parked = batch
        groups: dict[int, dict[int, procfs.ThreadStatus]] = {}
        for p in parked:
            if p.interrupted or not p.active:
                continue
            # A killed caller is found by its process's pidfd; a thread that is gone has no status.
            st = procfs.read_status(p.tid, p.tgid)
            if st is None:
                self._interrupt(p)
                continue
            verdict = procfs.should_interrupt(st)
            if verdict is None:
                grp = groups.get(p.tgid)
                if grp is None:
                    grp = {}
                    for tid in procfs.thread_ids(p.tgid):
                        s = st if tid == p.tid else procfs.read_status(tid, p.tgid)
                        if s is not None:
                            grp[tid] = s
                    groups[p.tgid] = grp
                verdict = p.tid in procfs.shared_signal_target(p.tgid, st.shd_pending & ~st.sig_ignored, grp)
            if verdict:
                self._interrupt(p)

    def _interrupt(self, p: Parked) -> None:
        """Make parked call ``p`` return EINTR in the sentry -- only while it is still parked: a call
        that has woken and replied must never see the flag (its next call would return -ERESTART*
        with no host signal to consume it). The forced flag kicks the task, which puts it on the
        ready list: the owner resumes it on its next turn."""
        if not p.active or p.interrupted:
            return
        p.interrupted = True
        self.stats["interrupted"] += 1
        with self.kernel.sig_mu:
            p.task.recalc_sigpending(force=True)

    #: Rounds of :meth:`_release_parked`: a call interrupted and resumed returns (the engines give
    #: up on EINTR), so one round does; more only if something parks the call again.
    RELEASE_ROUNDS = 8

    def _release_parked(self, tgid: int | None, tid: int | None = None) -> None:
        """Interrupt the parked calls of a dead process (or thread) and run them to their reply now.

        A receiver killed while parked must stop being a receiver before anything else is served:
        otherwise the next send could hand its message to the dead receiver and lose it (Linux takes
        a killed receiver off the queue at once). Resumed, the calls cancel their waiter records, or,
        if a message reached them meanwhile, their SEND fails with ENOENT and they put it back
        (undo) -- before the owner serves anything else, so the next receive finds it. Only the
        owner calls this (pidfd events, and a TID found reused at the start of a dispatch)."""
        self._release(lambda p: p.tgid == tgid or p.tid == tid)

    def _release_all(self) -> None:
        """Stopping: interrupt every parked call and run it to its reply."""
        self._release(lambda p: True)

    def _release(self, mine: Callable[[Parked], bool]) -> None:
        park = self._parking
        for _ in range(self.RELEASE_ROUNDS):
            calls = [p for p in self._parked if mine(p)]
            if not calls:
                return
            for p in calls:
                self._interrupt(p)
            for p in calls:
                if p.active:
                    park.resume(p)
        log.warning("parked calls keep parking after an interrupt")

    # -- helpers for backends --------------------------------------------------------------------------
    def after_reply(self, action: Callable[[], None]) -> None:
        """Run ``action`` after the SEND of the call being served (at once outside a served call): a
        signal raised for a target must not interrupt the very call that caused it
        (docs/platform-rules.md §2, "Reply before side effects")."""
        post = memory.context().post
        if post is not None:
            post.append(action)
        else:
            action()

    def trace(self, n: Notification, t: Task, shown: int) -> None:
        """For reply hooks: show the call being served to ``Kernel.tracer`` with ``shown``, the result
        the target gets, before the hook SENDs it (the arguments are still the caller's then)."""
        tracer = self.kernel.tracer
        if tracer is not None and n.arch != AUDIT_ARCH_I386:  # the tracer decodes x86_64 calls only
            memory.context().traced = True
            tracer(t, n.nr, n.args, shown)

    def tgid_of(self, tid: int) -> int | None:
        """The host thread group of ``tid`` (None if it is gone)."""
        t = self._by_tid.get(tid)
        if t is not None:
            return t.tg.tgid
        st = procfs.read_status(tid)
        return st.tgid if st is not None else None

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Kill every served process (the sentry is going away: the targets must not live on with
        ENOSYS for their queue calls)."""
        for pfd in list(self._pidfds):
            try:
                signal.pidfd_send_signal(pfd, sig)
            except OSError:
                pass


__all__ = ["Platform", "Parked"]
