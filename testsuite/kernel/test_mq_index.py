"""A POSIX queue's message order (kernel/mq/queue.py) checked against a plain model: the highest
priority first, FIFO within one, through the bucketed index's every path — a priority in an indexed
bucket or a new one, buckets spilling from ``_high`` into the SortedList and coming back, the node
a drained queue keeps, and the platform's undo of a receive — which the syscall-level suites cannot
steer into with this mix.

Linux counterpart: ipc/mqueue.c's ``msg_insert``/``msg_get`` (an rbtree of per-priority FIFOs, which
the model is). gVisor counterpart: none (its send/receive is unmerged).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from mqsentry.abi.linux.errno import EAGAIN
from mqsentry.abi.linux.mqueue import MQ_PRIO_MAX
from mqsentry.boot import Kernel
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.mq.queue import Queue
from mqsentry.kernel.task import Task
from mqsentry.tools.invariants import check_posix_queue


def _queue(maxmsg: int) -> tuple[Queue, Task]:
    """A bare queue of 8-byte messages and a task to call it with (nonblocking calls only)."""
    k = Kernel()
    return Queue(k, maxmsg, 8), k.new_task()


class _Model:
    """Priority -> FIFO of payloads, read the slow and obvious way."""

    def __init__(self) -> None:
        self.fifos: dict[int, list[bytes]] = {}

    def __len__(self) -> int:
        return sum(len(f) for f in self.fifos.values())

    def send(self, data: bytes, prio: int) -> None:
        self.fifos.setdefault(prio, []).append(data)

    def receive(self) -> tuple[bytes, int]:
        prio = max(p for p, f in self.fifos.items() if f)
        return self.fifos[prio].pop(0), prio

    def unreceive(self, data: bytes, prio: int) -> None:
        self.fifos.setdefault(prio, []).insert(0, data)


def _check(q: Queue, model: _Model, where: str) -> None:
    with q.mu:
        problems = check_posix_queue(q, where, True)
        st = q.state_locked()
    assert problems == []
    assert {p: list(f) for p, f in st.nodes.items() if f} == {p: f for p, f in model.fifos.items() if f}
    assert q.curmsgs == len(model)


#: Priority choosers, each steering into other paths of the index: one bucket, a few neighbouring
#: ones, more buckets than ``_high`` holds, the whole range, ascending and descending runs (a new top
#: bucket at every send, or every send below the rest), and the edges of buckets and of the range.
_PRIOS: dict[str, Callable[[random.Random, int], int]] = {
    "one-bucket": lambda r, i: r.randrange(32),
    "few-buckets": lambda r, i: r.randrange(200),
    "many-buckets": lambda r, i: r.randrange(64) * 32 + r.randrange(3),
    "whole-range": lambda r, i: r.randrange(MQ_PRIO_MAX),
    "rising": lambda r, i: (i * 37) % MQ_PRIO_MAX,
    "falling": lambda r, i: MQ_PRIO_MAX - 1 - (i * 37) % MQ_PRIO_MAX,
    "edges": lambda r, i: r.choice([0, 1, 30, 31, 32, 33, 63, 64, 1023, 1024, MQ_PRIO_MAX - 32,
                                    MQ_PRIO_MAX - 2, MQ_PRIO_MAX - 1]),
    "lattice": lambda r, i: (i * 7919) % MQ_PRIO_MAX,  # the bench's sequence
}


@pytest.mark.parametrize("kind", sorted(_PRIOS))
def test_order_matches_the_model(kind: str) -> None:
    rng = random.Random(kind)
    pick = _PRIOS[kind]
    maxmsg = 300
    q, t = _queue(maxmsg)
    model = _Model()
    serial = 0
    fill = 0.5
    for step in range(6000):
        if step % 500 == 0:
            fill = rng.choice([0.2, 0.5, 0.8])  # drain phases empty the queue, fill phases fill it
        op = rng.random()
        if op < fill:
            serial += 1
            data = serial.to_bytes(4, "little")
            prio = pick(rng, serial)
            if len(model) >= maxmsg:
                with pytest.raises(SysError) as e:
                    q.send(t, data, prio, 1)
                assert e.value.errno == EAGAIN
            else:
                assert q.send(t, data, prio, 1) is None
                model.send(data, prio)
        elif op < 0.95 or not len(model):
            if not len(model):
                with pytest.raises(SysError) as e:
                    q.receive(t, 1)
                assert e.value.errno == EAGAIN
            else:
                got = q.receive(t, 1)
                assert got == model.receive(), step
        else:
            # The platform's undo of a receive: the message goes back to the head of its FIFO,
            # which a send at its priority may have recreated meanwhile (taking the room of a
            # full queue: then the message is dropped).
            data, prio = model.receive()
            assert q.receive(t, 1) == (data, prio)
            meanwhile = rng.random()
            if meanwhile < 0.5:
                serial += 1
                later = serial.to_bytes(4, "little")
                assert q.send(t, later, prio, 1) is None
                model.send(later, prio)
            elif meanwhile < 0.7:
                # Another message passes through (on a drained queue, the node it leaves is kept).
                serial += 1
                other = serial.to_bytes(4, "little")
                other_prio = pick(rng, serial)
                assert q.send(t, other, other_prio, 1) is None
                model.send(other, other_prio)
                assert q.receive(t, 1) == model.receive()
            q.unreceive(data, prio)
            if len(model) < maxmsg:
                model.unreceive(data, prio)
            # else the send took the room: the message is dropped (docs/platform-rules.md §3)
        if step % 50 == 0 or len(model) < 3:
            _check(q, model, f"{kind} step {step}")
    while len(model):
        assert q.receive(t, 1) == model.receive()
    _check(q, model, f"{kind} drained")


def _state(q: Queue, quiescent: bool = True) -> tuple[dict[int, tuple[bytes, ...]], tuple[int, ...], int,
                                                      int | None]:
    with q.mu:
        assert check_posix_queue(q, "state", quiescent) == []
        st = q.state_locked()
    return st.nodes, st.prios, st.top, st.cached_empty


@pytest.mark.parametrize("later", [700, 7, 5 + 32 * 40])
def test_a_drained_queue_keeps_one_empty_node(later: int) -> None:
    """A drained queue keeps its last node, empty, until the next message: one of that priority
    joins it, one of another frees it. In between, the queue drains through more buckets than the
    top of the index holds (some spilled into the SortedList), at a priority in the kept node's
    bucket or in another."""
    q, t = _queue(100)
    for prio in (5, 4000, 32767):
        q.send(t, b"m", prio, 1)
    for prio in (32767, 4000, 5):
        assert q.receive(t, 1) == (b"m", prio)
    assert _state(q) == ({5: ()}, (5,), 5, 5)
    above = [later + 32 * (i + 1) for i in range(40)]  # 40 buckets above ``later``'s
    q.send(t, b"n", later, 1)
    assert _state(q) == ({later: (b"n",)}, (later,), later, None)
    for prio in above:
        q.send(t, b"n", prio, 1)
    for prio in [*reversed(above), later]:
        assert q.receive(t, 1) == (b"n", prio)
    assert _state(q) == ({later: ()}, (later,), later, later)
    q.send(t, b"o", 5, 1)
    assert q.receive(t, 1) == (b"o", 5)
    assert _state(q) == ({5: ()}, (5,), 5, 5)


class _Waker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def test_a_blocked_senders_message_joins_its_priority() -> None:
    """pipelined_receive inserts a blocked sender's message into the freed room: at the priority of
    a node holding one message or several, it joins their FIFO."""
    q, t = _queue(2)
    q.send(t, b"a", 5, 1)
    assert q.receive(t, 1) == (b"a", 5)
    assert _state(q) == ({5: ()}, (5,), 5, 5)
    q.send(t, b"b", 10, 1)  # the node kept at 5 is freed
    assert _state(q) == ({10: (b"b",)}, (10,), 10, None)
    q.send(t, b"c", 3, 1)
    waker = _Waker()
    w = q.send(t, b"d", 3, 0, waker)
    assert w is not None and not w.ready
    assert q.receive(t, 1) == (b"b", 10)
    assert w.ready and waker.woken == 1
    assert _state(q) == ({3: (b"c", b"d")}, (3,), 3, None)
    w = q.send(t, b"f", 3, 0, waker)  # and behind a FIFO: it joins its tail
    assert w is not None and not w.ready
    assert q.receive(t, 1) == (b"c", 3)
    assert w.ready and waker.woken == 2
    assert _state(q) == ({3: (b"d", b"f")}, (3,), 3, None)
    assert q.receive(t, 1) == (b"d", 3)
    assert q.receive(t, 1) == (b"f", 3)
    assert _state(q) == ({3: ()}, (3,), 3, 3)
    q.send(t, b"e", 3, 1)  # the kept node takes it
    assert _state(q) == ({3: (b"e",)}, (3,), 3, None)


def test_destroy_empties_the_index() -> None:
    q, t = _queue(100)
    for i in range(60):
        q.send(t, b"m", (i * 997) % MQ_PRIO_MAX, 1)
    q.destroy()
    with q.mu:
        st = q.state_locked()
    assert (st.nodes, st.prios, st.top, q.curmsgs, q.qsize) == ({}, (), -1, 0, 0)
