"""The set of priorities of one POSIX queue that have a message node, with O(1) highest-first access.

Linux counterpart: the rbtree of ``posix_msg_tree_node`` in ipc/mqueue.c (``msg_insert`` links a
node per priority, ``msg_get`` takes the rightmost, cached in ``info->msg_tree_rightmost``).
gVisor counterpart: none (pkg/sentry/kernel/mq keeps one list; PR 6458 sorts on insert).

Priorities are below MQ_PRIO_MAX (32768), so the set is a two-level bitmap: ``_words[w]`` holds the
64 priorities ``64*w .. 64*w + 63`` as bits, present only while non-empty, and ``_summary`` has bit
``w`` set for every present word. Adding, removing and finding the highest priority are each a few
small-integer operations, whatever the number of priorities in use (a sorted list pays a search
and a list insert per new node, which is what made 32768 priorities slower than one).
"""

from __future__ import annotations

from collections.abc import Iterator


class PrioritySet:
    """A set of ints in ``[0, 32768)``.

    Not thread-safe: the owning queue's ``mu`` guards every field. No field is immutable.
    """

    __slots__ = ("_n", "_summary", "_words")

    def __init__(self) -> None:
        self._words: dict[int, int] = {}
        self._summary = 0
        self._n = 0

    def add(self, prio: int) -> None:
        w = prio >> 6
        bit = 1 << (prio & 63)
        x = self._words.get(w, 0)
        if x & bit:
            return
        if not x:
            self._summary |= 1 << w
        self._words[w] = x | bit
        self._n += 1

    def discard(self, prio: int) -> None:
        w = prio >> 6
        bit = 1 << (prio & 63)
        x = self._words.get(w, 0)
        if not x & bit:
            return
        x &= ~bit
        if x:
            self._words[w] = x
        else:
            del self._words[w]
            self._summary &= ~(1 << w)
        self._n -= 1

    def top(self) -> int:
        """The highest priority in the set, -1 if it is empty."""
        w = self._summary.bit_length() - 1
        if w < 0:
            return -1
        return (w << 6) | (self._words[w].bit_length() - 1)

    def pop(self) -> int:
        """Remove and return the highest priority (IndexError if the set is empty)."""
        top = self.top()
        if top < 0:
            raise IndexError("pop from an empty PrioritySet")
        self.discard(top)
        return top

    def pop_top(self) -> int:
        """Remove the highest priority (the set must not be empty) and return the new highest, -1
        if none is left: the receive path's "free the top node, find the next one" in one call."""
        w = self._summary.bit_length() - 1
        x = self._words[w]
        x &= ~(1 << (x.bit_length() - 1))
        self._n -= 1
        if x:
            self._words[w] = x
            return (w << 6) | (x.bit_length() - 1)
        del self._words[w]
        summary = self._summary = self._summary & ~(1 << w)
        w = summary.bit_length() - 1
        if w < 0:
            return -1
        return (w << 6) | (self._words[w].bit_length() - 1)

    def clear(self) -> None:
        self._words.clear()
        self._summary = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __contains__(self, prio: object) -> bool:
        if not isinstance(prio, int) or prio < 0:
            return False
        return bool(self._words.get(prio >> 6, 0) >> (prio & 63) & 1)

    def __iter__(self) -> Iterator[int]:
        """Ascending order (as a sorted list iterates)."""
        out: list[int] = []
        for w in sorted(self._words):
            x = self._words[w]
            while x:
                low = x & -x
                out.append((w << 6) | (low.bit_length() - 1))
                x ^= low
        return iter(out)


__all__ = ["PrioritySet"]
