"""Blocking operations of a differential sequence: parked senders and receivers, and signals to them.

Linux counterpart: the sleeping halves of ipc/mqueue.c (``wq_sleep``, ``pipelined_send``,
``pipelined_receive``, ``prepare_timeout``/``timespec64_to_ktime``'s clamp) and ipc/msg.c
(``do_msgsnd``'s ``ss_add`` loop, ``do_msgrcv``'s ``msg_receiver``, ``expunge_all``, ``freeque``), and
the signal-restart rules (ERESTARTSYS with and without SA_RESTART, ERESTARTNOHAND). gVisor
counterpart: none.

A :class:`Park` starts a call that may sleep on a thread of its own (on the host, the actor's own
process thread; on the sentry, a Python thread driving the actor's task). After every step of a
sequence that has, or had, a call in flight, :func:`settle` waits until each such call has either
finished or is asleep, and the step's observation gains the calls that finished (with what they
returned and copied out) and, for those still asleep, how many signals their process has handled.
Whether a call sleeps is read from state, never from elapsed time: on the sentry exactly (the task
sleeps with no wake-up or signal pending), on the host from the other side's observation (the sentry
runs first) plus the thread's sleeping state.

Deadlines are absolute: "null" (none), "far" (``tv_sec = INT64_MAX``) and "far_ns" (the same with the
largest valid ``tv_nsec``) can only end by a wake-up or a signal; "past", "sec_neg" and "ns_big" end at
once. No deadline that lies a little in the future is used: when it fires would be a matter of time.
"""

from __future__ import annotations

import concurrent.futures
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mqsentry.abi.linux.time import TIMESPEC
from mqsentry.testsuite.difftest.ops import Op
from mqsentry.testsuite.difftest.world import (
    BIG,
    PRIO,
    TS,
    Actor,
    World,
    payload,
    read_long,
)

Obs = Any

INT64_MAX = (1 << 63) - 1
DEADLINES = {"far": (INT64_MAX, 0), "far_ns": (INT64_MAX, 999_999_999), "past": (0, 0), "sec_neg": (-1, 0),
             "ns_big": (0, 1_000_000_000)}
#: The handled signal installed with SA_RESTART in every process (the others have no SA_RESTART).
RESTART_SIGNAL = 35
#: How long the host side waits for a state the sentry side reached (a bound, not an expectation).
SETTLE_BOUND = 20.0
_U32 = struct.Struct("<I")


class Pending:
    """A call in flight on an actor: its future and how to turn its result into an observation."""

    def __init__(self, actor: Actor, what: Any, fut: concurrent.futures.Future[int],
                 observe: Callable[[int], Obs]) -> None:
        self.actor = actor
        self.what = what
        self.fut = fut
        self.observe = observe


def _start(w: World, a: Actor, what: Any, name: str, args: tuple[int, ...], observe: Callable[[int], Obs]) -> None:
    fut: concurrent.futures.Future[int] = concurrent.futures.Future()

    def run() -> None:
        try:
            fut.set_result(World.sys(a, name, *args))
        except BaseException as e:
            fut.set_exception(e)

    threading.Thread(target=run, name=f"difftest-{a.label}-{name}", daemon=True).start()
    w.pending[a.label] = Pending(a, what, fut, observe)


def _deadline_ptr(a: Actor, kind: str) -> int:
    if kind == "null":
        return 0
    a.proc.write(a.small + TS, TIMESPEC.pack(*DEADLINES[kind]))
    return a.small + TS


@dataclass(frozen=True)
class Park(Op):
    """Start a possibly sleeping call on actor ``a``: ``call`` is "mq_recv", "mq_send", "msgrcv" or
    "msgsnd"; ``ref`` the descriptor or queue reference; ``size``; ``arg`` the priority (mq_send),
    the mtype (msgsnd) or msgtyp (msgrcv); ``flags`` msgrcv/msgsnd flags (never IPC_NOWAIT);
    ``deadline`` a key of DEADLINES or "null". Skipped unless another actor stays idle."""

    a: int
    call: str
    ref: int
    size: int
    arg: int = 0
    flags: int = 0
    deadline: str = "null"

    def run(self, w: World, hint: Obs = None) -> Obs:
        if len(w.idle()) < 2:
            return ("park", "skipped")
        if self.call == "msgsnd" and any(p.what == ("msgsnd", w.qid(self.ref)) for p in w.pending.values()):
            # Linux's ss_wakeup wakes every blocked sender whose message now fits and they race for
            # the room: with two on one queue, which one wins is up to the scheduler, on Linux too.
            return ("park", "skipped")
        a = w.actor(self.a)
        if self.call == "mq_recv":
            fd = w.fd(a, self.ref)
            a.proc.write(a.small + PRIO, b"\xff\xff\xff\xff")
            ts = _deadline_ptr(a, self.deadline)

            def seen_recv(ret: int) -> Obs:
                if ret < 0:
                    return (ret,)
                return (ret, a.proc.read(a.big, ret), _U32.unpack(a.proc.read(a.small + PRIO, 4))[0])
            _start(w, a, "mq_recv", "mq_timedreceive", (fd, a.big, self.size, a.small + PRIO, ts), seen_recv)
        elif self.call == "mq_send":
            fd = w.fd(a, self.ref)
            data = payload(self.size + self.arg, min(self.size, BIG))
            a.proc.write(a.big, data)
            ts = _deadline_ptr(a, self.deadline)
            _start(w, a, "mq_send", "mq_timedsend", (fd, a.big, self.size, self.arg, ts), lambda r: (r,))
        elif self.call == "msgrcv":
            def seen_msgrcv(ret: int) -> Obs:
                if ret < 0:
                    return (ret,)
                return (ret, read_long(a, a.big), a.proc.read(a.big + 8, ret))
            _start(w, a, "msgrcv", "msgrcv", (w.qid(self.ref), a.big, self.size, self.arg, self.flags), seen_msgrcv)
        else:
            data = payload(self.size + self.arg, min(self.size, BIG - 8))
            a.proc.write(a.big, struct.pack("<q", self.arg) + data)
            _start(w, a, ("msgsnd", w.qid(self.ref)), "msgsnd", (w.qid(self.ref), a.big, self.size, self.flags),
                   lambda r: (r,))
        return ("park", a.label, self.call)


@dataclass(frozen=True)
class Signal(Op):
    """Actor ``a`` sends ``sig`` with tgkill to the ``v``-th actor that has a call in flight."""

    a: int
    v: int
    sig: int

    def run(self, w: World, hint: Obs = None) -> Obs:
        parked = sorted(w.pending.values(), key=lambda p: p.actor.label)
        if not parked:
            return ("signal", "none")
        victim = parked[self.v % len(parked)].actor
        a = w.actor(self.a)
        return ("signal", victim.label, w.sys(a, "tgkill", victim.proc.pid, victim.proc.tid, self.sig))


# -- settling ------------------------------------------------------------------------------------------

def _sentry_asleep(p: Pending) -> bool:
    """Exact on the sentry: the task sleeps in the call with no wake-up or signal pending."""
    t = p.actor.proc.h.task  # type: ignore[attr-defined]
    return t.state == "S" and not t._woken and not t.sigpending and not t.tg.group_stop


def _handled(a: Actor) -> int:
    """Signals the recording handler has handled in ``a``'s process."""
    return len(a.proc.deliveries())


def settle(w: World, hint: Obs = None) -> Obs:
    """Wait until every call in flight has finished or sleeps; return (finished calls with their
    observations, (label, signals handled by its process) of each sleeping call)."""
    want_done: set[str] | None = None
    want_handled: dict[str, int] = {}
    if isinstance(hint, tuple) and len(hint) == 2:
        want_done = {label for label, *_ in hint[0]}
        want_handled = dict(hint[1])
    native = w.target.name == "native"
    deadline = time.monotonic() + SETTLE_BOUND
    for label, p in sorted(w.pending.items()):
        if not native:
            while not p.fut.done() and not _sentry_asleep(p):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.0002)
            continue
        if want_done is not None and label in want_done:
            try:
                p.fut.exception(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                pass
            continue
        # Expected asleep (or no hint): wait for the signals the other side saw handled, then sleep.
        need = want_handled.get(label, 0)
        while not p.fut.done() and (_handled(p.actor) < need or not p.actor.proc.h.is_blocked()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.0005)
        if want_done is None and not p.fut.done():
            time.sleep(0.02)  # no other side to go by (recording a reproducer): let a wake-up land
    done = []
    for label, p in sorted(w.pending.items()):
        if p.fut.done():
            exc = p.fut.exception()
            what = p.what[0] if isinstance(p.what, tuple) else p.what
            done.append((label, what, ("raised", type(exc).__name__) if exc is not None else p.observe(p.fut.result())))
            del w.pending[label]
    asleep = tuple((label, _handled(p.actor)) for label, p in sorted(w.pending.items()))
    return (tuple(done), asleep)


def step(w: World, op: Any, hint: Obs = None) -> Obs:
    """Run one operation and, when calls are (or were) in flight, settle them (see module docstring)."""
    wrapped = isinstance(hint, tuple) and len(hint) == 3 and hint[0] == "+"
    inner = hint[1] if wrapped else hint
    busy = bool(w.pending)
    obs = op.run(w, inner)
    if not busy and not w.pending:
        return obs
    return ("+", obs, settle(w, hint[2] if wrapped else None))


def release(w: World) -> None:
    """End the calls still in flight on the sentry (their threads would otherwise sleep for ever):
    SIGKILL their processes. The host's are killed with the native target."""
    if w.target.name != "sentry" or not w.pending:
        return
    from mqsentry.abi.linux.signal import SIGKILL
    from mqsentry.kernel.signals import SigInfo

    for p in list(w.pending.values()):
        p.actor.proc.h.task.send_signal(SigInfo(SIGKILL), group=True)
    for p in list(w.pending.values()):
        try:
            p.fut.exception(timeout=SETTLE_BOUND)
        except concurrent.futures.TimeoutError:
            pass
    w.pending.clear()


__all__ = ["DEADLINES", "RESTART_SIGNAL", "Park", "Signal", "release", "settle", "step"]
