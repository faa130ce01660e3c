"""The POSIX queue's priority index (kernel/mq/prioset.py) against a plain set: membership, order,
the highest element, at the word boundaries and over the whole priority range.

Linux counterpart: the rbtree of priority nodes in ipc/mqueue.c. gVisor counterpart: none.
"""

from __future__ import annotations

import random

import pytest

from mqsentry.abi.linux.mqueue import MQ_PRIO_MAX
from mqsentry.kernel.mq.prioset import PrioritySet


def test_matches_a_set_model() -> None:
    rng = random.Random(32768)
    ps = PrioritySet()
    model: set[int] = set()
    edges = [0, 1, 62, 63, 64, 65, 127, 128, MQ_PRIO_MAX - 65, MQ_PRIO_MAX - 64, MQ_PRIO_MAX - 1]
    for step in range(6000):
        p = rng.choice(edges) if rng.random() < 0.3 else rng.randrange(MQ_PRIO_MAX)
        op = rng.random()
        if op < 0.5:
            ps.add(p)
            model.add(p)
        elif op < 0.8:
            ps.discard(p)
            model.discard(p)
        elif model and op < 0.9:
            assert ps.pop() == max(model)
            model.remove(max(model))
        elif model:
            model.remove(max(model))
            assert ps.pop_top() == (max(model) if model else -1)
        assert ps.top() == (max(model) if model else -1)
        assert len(ps) == len(model)
        assert (p in ps) == (p in model)
        if step % 500 == 0:
            assert list(ps) == sorted(model)
    assert list(ps) == sorted(model)
    ps.clear()
    assert ps.top() == -1 and len(ps) == 0 and list(ps) == []
    with pytest.raises(IndexError):
        ps.pop()


def test_every_priority_in_turn() -> None:
    ps = PrioritySet()
    for p in range(MQ_PRIO_MAX):
        ps.add(p)
        assert ps.top() == p
    assert list(ps) == list(range(MQ_PRIO_MAX))
    for p in reversed(range(MQ_PRIO_MAX)):
        assert ps.pop() == p
    assert ps.top() == -1
