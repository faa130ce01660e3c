"""The SysV message store's indexes (kernel/msgqueue/store.py) checked against a plain list model:
MSG_COPY's positional reads stay right through removals, holes, renumbering and push_front (the
platform's undo of a receive), which the syscall-level suites cannot reach with this mix.

Linux counterpart: ipc/msg.c's one ``q_messages`` list, which the model is. gVisor counterpart: none.
"""

from __future__ import annotations

import random

from mqsentry.abi.linux.msgqueue import MTYPE
from mqsentry.kernel.msgqueue.store import SEARCH_ANY, SEARCH_EQUAL, MessageStore


def _blob(mtype: int, n: int) -> bytes:
    return MTYPE.pack(mtype) + n.to_bytes(4, "little")


def _check(store: MessageStore, model: list[bytes], rng: random.Random) -> None:
    assert store.qnum == len(model)
    idxs = list(range(len(model)))
    rng.shuffle(idxs)
    for i in sorted(idxs[:5]) + idxs[:5] + [len(model), -1]:
        assert store.at_index(i) == (model[i] if 0 <= i < len(model) else None), i


def test_at_index_matches_the_arrival_order_model() -> None:
    rng = random.Random(13)
    store = MessageStore()
    model: list[bytes] = []
    serial = 0
    for step in range(4000):
        op = rng.random()
        if op < 0.45 or not model:
            serial += 1
            b = _blob(rng.randint(1, 4), serial)
            store.append(b, MTYPE.unpack_from(b)[0], 4)
            model.append(b)
        elif op < 0.75:
            mtype = rng.randint(1, 4)
            seq = store.find(mtype, SEARCH_EQUAL)
            want = next((b for b in model if MTYPE.unpack_from(b)[0] == mtype), None)
            if want is None:
                assert seq < 0
            else:
                assert store.remove(seq, mtype, 4) == want
                model.remove(want)
        elif op < 0.9:
            seq = store.find(0, SEARCH_ANY)
            b = model.pop(0)
            assert store.remove(seq, MTYPE.unpack_from(b)[0], 4) == b
        else:
            # The undo of a receive: the oldest message of its type goes back to the very front.
            b = model.pop(0)
            seq = store.find(0, SEARCH_ANY)
            store.remove(seq, MTYPE.unpack_from(b)[0], 4)
            store.push_front(b, MTYPE.unpack_from(b)[0], 4)
            model.insert(0, b)
        if step % 7 == 0:
            _check(store, model, rng)
    _check(store, model, rng)
    assert list(store) == model


def test_push_front_into_holes_behind_a_copy_position() -> None:
    """A removal in the middle, a head removal that skips an older hole, then two push_fronts: the
    head position and the hole count are back to their old values but other slots are live, so
    MSG_COPY must not trust the position it found before."""
    store = MessageStore()
    types = [1, 2, 1, 1, 1, 3, 1, 1]  # slot 1 and slot 5 hold the only messages of types 2 and 3
    blobs = [_blob(m, i) for i, m in enumerate(types)]
    for b in blobs:
        store.append(b, MTYPE.unpack_from(b)[0], 4)
    store.remove(store.find(2, SEARCH_EQUAL), 2, 4)  # a hole at slot 1
    model = [b for i, b in enumerate(blobs) if i != 1]
    assert store.at_index(3) == model[3] == blobs[4]  # MSG_COPY's position: slot 4
    store.remove(store.find(3, SEARCH_EQUAL), 3, 4)  # a hole at slot 5
    store.remove(store.find(0, SEARCH_ANY), 1, 4)  # slot 0; the head skips the hole to slot 2
    model = [b for b in model if b not in (blobs[0], blobs[5])]
    new = [_blob(7, 100), _blob(7, 101)]
    store.push_front(new[1], 7, 4)  # into slot 1
    store.push_front(new[0], 7, 4)  # into slot 0
    model = new + model
    assert store.at_index(3) == model[3]
    assert [store.at_index(i) for i in range(len(model))] == model
