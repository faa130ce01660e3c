"""Parked calls: a greenlet per served call that sleeps, every call on the loop's one OS thread.

Linux counterpart: the sleeping side of a wait queue (kernel/sched/wait.c: a task sleeps in
``schedule()`` until ``try_to_wake_up``; ``schedule_hrtimeout`` for deadlines). gVisor counterpart:
the goroutine per task of pkg/sentry/kernel (task_block.go ``Task.block`` parks the goroutine on a
channel; the Go scheduler hands the P to another goroutine meanwhile). A greenlet is CPython's
goroutine: a stack that can be switched away from and back to, so the handlers and engines keep
their exact shape -- ``Task.block()`` simply does not return until the call is resumed.

How it works (see DESIGN.md, "Parking"):

* Loop greenlets run :meth:`Parking.run_loop`'s body (the platform's poll-and-dispatch loop). One of
  them at a time, the *owner*, polls; it runs each served call inline, so a call that does not sleep
  costs no switch and no greenlet creation.
* A call that sleeps reaches :meth:`Parking.sleep` through ``Task.block`` (``Task.sleeper``). It
  registers a :class:`Parked` record (for the signal scan, deadlines and wake-ups) and switches
  away: an owner hands the loop to an idle loop greenlet (a fresh one if none is idle) -- Go's "hand
  the P off" -- and any other greenlet (a resumed call that has to sleep again) switches back to
  the owner, which resumed it.
* Wake-ups: ``Task.wake``/``Task.kick`` call :meth:`Parking.ready` from whatever thread (the loop, or
  the FUSE thread): the task goes on a thread-safe ready list, and off the loop thread the wake
  eventfd is written so the poll returns. The owner drains the list before every poll
  (:meth:`Parking.run_ready`) and switches into each parked call found there, which re-checks
  ``Task.wakeup_status`` and either returns from ``block`` or parks again. Deadlines sit in a heap;
  the owner's poll timeout is the nearest deadline (and the signal-scan period while anything is
  parked), and :meth:`Parking.fire_timers` resumes the expired calls, which return ETIMEDOUT.
* A resumed call runs to its reply on the owner's turn; when its loop greenlet has finished the call
  it goes to the idle pool (at most ``max_idle`` are kept; a surplus one ends) and switches back.

Rule: **no threading lock is ever held across a switch.** Two greenlets of one thread taking the same
``threading.Lock`` deadlock the thread, and a lock held by a parked greenlet blocks the FUSE thread.
Switches happen only in :meth:`Parking.sleep` (reached through ``Task.block``, which every engine
calls with its queue lock released -- kernel/msgqueue/queue.py, kernel/mq/queue.py), in the owner's
:meth:`resume` (from the poll loop, holding nothing) and when a loop greenlet goes idle (holding
nothing). ``Task._cv`` is taken by ``Task.wakeup_status`` only to test the flags.

Guards: every field of :class:`Parking` and of :class:`Parked` is touched by the loop's OS thread
only, except ``Parking.ready_q`` (a ``collections.deque``: append and popleft are atomic, the FUSE
thread appends) and the wake eventfd (written by any thread). ``loop_ident`` is written by
:meth:`run_loop` before and after serving, read by :meth:`ready` from any thread.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from greenlet import GreenletExit, getcurrent, greenlet

from mqsentry.kernel.platform import memory
from mqsentry.kernel.task import Task


@dataclass(eq=False, slots=True)
class Parked:
    """A served call sleeping in the sentry (loop thread only). ``interrupted``: the signal scan
    forced the task's sigpending (set only while ``active``); ``active``: still in the parked set."""

    nid: int
    tid: int
    tgid: int
    task: Task
    nr: int
    glet: Any
    deadline_ns: int | None
    interrupted: bool = False
    active: bool = True


class Parking:
    """The greenlets of one platform loop: the owner, the idle pool, the parked calls, the ready list
    and the deadline heap. See the module docstring for the protocol and what guards which field."""

    def __init__(self, kernel: Any, wake_fd: int, revalidate: Callable[[int], bool],
                 stats: dict[str, int], max_idle: int = 8) -> None:
        self.kernel = kernel
        self.clock = kernel.clock
        self.wake_fd = wake_fd
        #: Re-armed as the call context's ``validate`` when a call wakes: the caller may have died
        #: (and its TID been reused) while it slept, so its next memory access checks again.
        self.revalidate = revalidate
        self.stats = stats
        #: Idle loop greenlets kept for the next hand-off (a greenlet costs ~10 µs to start).
        self.max_idle = max_idle
        #: The OS thread running :meth:`run_loop` (0 outside it): only there can a call park.
        self.loop_ident = 0
        self.hub: Any = None
        self.owner: Any = None
        self.idle: list[Any] = []
        self.parked: dict[Parked, None] = {}
        self.sleeping: dict[Task, Parked] = {}
        self.ready_q: deque[Task] = deque()
        #: (deadline_ns, sequence, record): stale records (no longer active) are skipped and swept.
        self.timers: list[tuple[int, int, Parked]] = []
        self._seq = 0
        self._body: Callable[[Any], bool] | None = None

    # -- the loop's greenlets --------------------------------------------------------------------------
    def run_loop(self, body: Callable[[Any], bool], stopped: Callable[[], bool]) -> None:
        """Run the platform loop on this OS thread until it stops. ``body(me)`` polls and dispatches
        while greenlet ``me`` owns the loop; it returns True once a call it dispatched has parked and
        later completed (``me`` no longer owns the loop), False when the loop stops. The calling
        greenlet is the *hub*: the parent of every loop greenlet, it regains control when one ends (a
        surplus idle one: it passes control back to the owner; the owner at stop: it returns) or
        needs a new loop greenlet started (from the hub's shallow stack; see :meth:`_switch_away`)."""
        self._body = body
        self.loop_ident = threading.get_ident()
        self.hub = getcurrent()
        self.owner = greenlet(self._greenlet_main, self.hub)
        try:
            while not stopped():
                self.owner.switch()
        finally:
            idle, self.idle = self.idle, []
            for g in idle:
                g.throw(GreenletExit)  # it ends at once and comes back here
            self.loop_ident = 0
            self.owner = None

    def _greenlet_main(self) -> None:
        memory.set_context(memory.new_context())
        me = getcurrent()
        body = self._body
        assert body is not None
        while body(me):
            # The call this greenlet dispatched has parked, been resumed and replied: wait in the
            # idle pool for a hand-off (or end, if enough are idle).
            if len(self.idle) >= self.max_idle:
                return  # the hub passes control back to the owner
            self.idle.append(me)
            ctx = memory.context()
            self.owner.switch()
            memory.set_context(ctx)
            # Resumed by an owner whose call parks: this greenlet owns the loop now.

    def _switch_away(self) -> None:
        """The current greenlet's call sleeps: an owner hands the loop to an idle (or new) loop
        greenlet; a resumed call goes back to the owner that resumed it."""
        if self.owner is not getcurrent():
            nxt = self.owner  # a resumed call parks again: back to the owner that resumed it
        elif self.idle:
            nxt = self.owner = self.idle.pop()
        else:
            # A new greenlet starts with the recursion depth of the one that starts it: started
            # from here, every hand-off would stack another call's depth onto the next (a
            # thousand parked calls overflow it). The hub starts it, from the bottom of the stack.
            self.owner = greenlet(self._greenlet_main, self.hub)
            nxt = self.hub
        ctx = memory.context()
        nxt.switch()
        memory.set_context(ctx)

    def resume(self, p: Parked) -> None:
        """Run parked call ``p`` until it replies or parks again (the owner only, holding no lock)."""
        if getcurrent() is not self.owner:
            # The call would come back to the owner, never to us: a loud bug instead of a hang.
            raise RuntimeError("only the loop's owner may resume a parked call")
        ctx = memory.context()
        p.glet.switch()
        memory.set_context(ctx)

    # -- Task.sleeper protocol -------------------------------------------------------------------------
    def sleep(self, t: Task, deadline_ns: int | None) -> int:
        """``Task.block`` of a served task: park the call's greenlet until it is woken (0), interrupted
        (EINTR) or past ``deadline_ns`` (ETIMEDOUT). -1: not on the loop's thread (the caller sleeps
        its thread instead; nothing but the loop serves calls, so only an embedding test gets there)."""
        ret = t.wakeup_status(deadline_ns)
        if ret >= 0:
            return ret  # a wake-up that arrived before the sleep is not lost
        if threading.get_ident() != self.loop_ident or self.owner is None:
            return -1
        ctx = memory.context()
        p = Parked(ctx.nid, ctx.tid, t.tg.tgid, t, ctx.nr, getcurrent(), deadline_ns)
        if ctx.parked is None:
            ctx.parked = [p]
        else:
            ctx.parked.append(p)  # woken to re-check and parked again: the same call
        self.parked[p] = None
        self.sleeping[t] = p
        self.stats["parked"] += 1
        clock = self.clock
        subscribed = False
        if deadline_ns is not None:
            if clock.real_time:
                timers = self.timers
                self._seq += 1
                heapq.heappush(timers, (deadline_ns, self._seq, p))
                if len(timers) > 64 and len(timers) > 2 * len(self.parked):
                    timers[:] = [e for e in timers if e[2].active]
                    heapq.heapify(timers)
            else:
                clock.subscribe(t.kick)  # a settable test clock: its jumps kick the sleeper
                subscribed = True
        t.state = "S"
        try:
            while True:
                self._switch_away()
                ret = t.wakeup_status(deadline_ns)
                if ret >= 0:
                    return ret
        finally:
            t.state = "R"
            p.active = False
            del self.parked[p]
            if self.sleeping.get(t) is p:
                del self.sleeping[t]
            if not self.parked:
                self.timers.clear()
            if subscribed:
                clock.unsubscribe(t.kick)
            ctx.validate = self.revalidate
            if p.interrupted:
                # The host's signal is the host's business: the sentry's flag goes back to the
                # task's own state. No scan can interrupt the record any more (it is inactive).
                with self.kernel.sig_mu:
                    t.recalc_sigpending()

    def ready(self, t: Task) -> None:
        """``Task.wake``/``kick`` (any thread): resume ``t`` if it is parked."""
        self.ready_q.append(t)
        if threading.get_ident() != self.loop_ident:
            try:
                os.eventfd_write(self.wake_fd, 1)
            except OSError:  # closed: the loop is gone
                pass

    # -- the owner's turn --------------------------------------------------------------------------------
    def run_ready(self) -> None:
        """Resume every parked call on the ready list (stale entries are skipped)."""
        ready = self.ready_q
        sleeping = self.sleeping
        while ready:
            p = sleeping.get(ready.popleft())
            if p is not None:
                self.resume(p)

    def fire_timers(self) -> None:
        """Resume the parked calls whose deadline has passed (they return ETIMEDOUT)."""
        timers = self.timers
        if not timers:
            return
        now = self.clock.now_ns()
        while timers and timers[0][0] <= now:
            p = heapq.heappop(timers)[2]
            if p.active:
                self.resume(p)

    def poll_timeout(self, scan_period: float) -> float:
        """The owner's poll timeout while calls are parked: the scan period, or less to the nearest
        deadline."""
        timers = self.timers
        while timers and not timers[0][2].active:
            heapq.heappop(timers)
        if not timers:
            return scan_period
        left: float = (timers[0][0] - self.clock.now_ns()) / 1e9
        return min(scan_period, max(left, 0.0))


__all__ = ["Parked", "Parking"]
