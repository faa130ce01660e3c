"""Pids as a served thread's pid namespace sees them (``pid_vnr``), from the host's NSpid lines.

Linux counterpart: kernel/pid.c (``struct pid``'s ``numbers[]``, one per level, ``pid_nr_ns``,
``pid_vnr``) and fs/proc/array.c (the NSpid/NStgid lines of /proc/<pid>/status, which list a task's
pid in every namespace from the reader's down to its own). gVisor counterpart:
pkg/sentry/kernel/pid_namespace.go... (``PIDNamespace.IDOfTask``, ``IDOfThreadGroup``).

The sentry stores pids of its root pid namespace (the namespace its /proc shows, the one the seccomp
notifications' pids are in). When a served thread is in a nested pid namespace, the platform records
what Linux keeps in ``struct pid``: the thread's pid and its process's tgid at every level below the
sentry's, with the identity of the namespace at each level (the nsfs inode of /proc/<tid>/ns/pid and
its ancestors through ``NS_GET_PARENT``, read through open descriptors; the caller re-validates its
notification afterwards). :meth:`PidViews.pid_vnr` then answers as ``pid_nr_ns`` does: the pid's
number at the caller's level if the pid's namespace at that level is the caller's, else 0.

A record stays after its process exits (Linux keeps the numbers in the ``struct pid`` an IPC object
still references) until the host reuses the pid for a thread the platform adopts, which overwrites it
(Linux would keep showing the old numbers to a queue that recorded the old pid: here the new owner's
show). Pids of the sentry's own namespace have no record: they are level 0.

Locks: ``_mu`` guards ``_views``; readers take it too (a dict read under a leaf lock).
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass

from mqsentry.kernel.platform.userns import NS_GET_PARENT, NsId


@dataclass(frozen=True, slots=True)
class PidView:
    """One pid's numbers and namespaces, from the sentry's level (index 0) down. Immutable."""

    numbers: tuple[int, ...]
    chain: tuple[NsId, ...]

    def nr_at(self, level: int, ns: NsId) -> int:
        """``pid_nr_ns``: the number in namespace ``ns`` at ``level``, 0 if the pid is not there."""
        if level < len(self.chain) and self.chain[level] == ns:
            return self.numbers[level]
        return 0


def _key(fd: int) -> NsId:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def ns_chain(tid: int, depth: int) -> tuple[NsId, ...] | None:
    """The pid namespaces of ``tid`` from the sentry's level down to its own (``depth`` levels below
    ours, as its NSpid line says); None if the thread is gone or the walk does not fit ``depth``."""
    try:
        fd = os.open(f"/proc/{tid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    keys: list[NsId] = []
    opened = [fd]
    try:
        cur = fd
        for _ in range(depth):
            keys.append(_key(cur))
            try:
                cur = fcntl.ioctl(cur, NS_GET_PARENT)
            except OSError:
                return None
            opened.append(cur)
        keys.append(_key(cur))
    finally:
        for f in opened:
            os.close(f)
    keys.reverse()
    return tuple(keys)


class PidViews:
    """The nested-namespace pids of the served threads (see the module docstring)."""

    def __init__(self) -> None:
        fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.root_key = _key(fd)
        finally:
            os.close(fd)
        self._mu = threading.Lock()
        self._views: dict[int, PidView] = {}

    def __bool__(self) -> bool:
        return bool(self._views)

    def record(self, tid: int, tgid: int, nspid: tuple[int, ...], nstgid: tuple[int, ...]) -> bool:
        """Record thread ``tid`` (of ``tgid``) from its status lines (call before re-validating the
        notification). True if it is in a nested namespace (a record was made), False if it is in the
        sentry's own (any stale record of a reused pid is dropped); None-like failure is False too."""
        if len(nspid) <= 1 or len(nspid) != len(nstgid):
            with self._mu:
                self._views.pop(tid, None)
                if tid == tgid:
                    self._views.pop(tgid, None)
            return False
        chain = ns_chain(tid, len(nspid) - 1)
        if chain is None or chain[0] != self.root_key:
            return False
        with self._mu:
            self._views[tid] = PidView(nspid, chain)
            self._views[tgid] = PidView(nstgid, chain)
        return True

    def pid_vnr(self, caller: int, pid: int) -> int:
        """``pid`` (a root-namespace pid) as host thread ``caller``'s pid namespace sees it."""
        with self._mu:
            me = self._views.get(caller)
            if me is None:
                return pid  # the caller is in the sentry's namespace: every pid is seen as is
            level = len(me.chain) - 1
            it = self._views.get(pid)
        if it is None:
            return 0  # a pid of the sentry's namespace, above the caller's
        return it.nr_at(level, me.chain[level])


__all__ = ["PidView", "PidViews", "ns_chain"]
