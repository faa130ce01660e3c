"""Consistency checks of a whole :class:`mqsentry.kernel.Kernel`, read through the engines' accessors.

Linux counterpart: none as such; these are the properties Linux's data structures keep by
construction (``msq->q_qnum``/``q_cbytes`` against ``q_messages``, ``ipc_ids`` against its idr and
rhashtable, ``mqueue_inode_info`` counters, ``ucounts`` RLIMIT_MSGQUEUE charges, ``struct file``
reference counts against ``files_struct``s). gVisor counterpart: none (gVisor's checks are its
``checklocks`` static analysis and the sentry's panics).

Used by ``mqsentry fuzz`` after every call and by ``mqsentry stress`` at the end of a run. Every check
only reads state. Locks are taken with a timeout (a lock that cannot be had is itself reported), and
with ``quiescent=True`` (no syscall in flight) any lock that is held, any waiter record left on a
queue and any half-reserved fd slot is a violation: nothing can legitimately hold them then.

Each ``check_*`` function returns a list of human-readable violation strings (empty: all good).
State is read only through what the engines offer (public fields documented with their locks, and
read-only accessors such as ``Registry.key_table_locked``, ``mq.Queue.state_locked``,
``UserBytes.charges_locked`` and ``FDTable.slots_locked``), never through private fields, so that an
engine may change its internals without breaking the checker silently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from mqsentry.abi.linux.ipc import IPC_PRIVATE, IPCMNI, IPCMNI_SEQ_MAX, IPCMNI_SHIFT
from mqsentry.abi.linux.mqueue import MQ_PRIO_MAX
from mqsentry.fs.mqfs import MqueueFilesystem, QueueFD

if TYPE_CHECKING:
    from mqsentry.kernel.ipc_namespace import IPCNamespace
    from mqsentry.kernel.kernel import Kernel

#: How long a check waits for a lock before calling it stuck.
LOCK_TIMEOUT = 2.0
_MTYPE_MASK = 0x7FFF_FFFF_FFFF_FFFF


@contextlib.contextmanager
def _hold(lock: Any, what: str, out: list[str], quiescent: bool) -> Iterator[bool]:
    """Acquire ``lock`` for a consistent read. Yields False (and reports) if it cannot be had."""
    if quiescent:
        got = lock.acquire(blocking=False)
        if not got:
            out.append(f"{what}: lock is held while no syscall is running (leaked lock)")
            yield False
            return
    else:
        got = lock.acquire(timeout=LOCK_TIMEOUT)
        if not got:
            out.append(f"{what}: lock not acquirable within {LOCK_TIMEOUT}s (deadlock?)")
            yield False
            return
    try:
        yield True
    finally:
        lock.release()


# -- namespaces ------------------------------------------------------------------------------------------
def namespaces(k: Kernel, extra: Iterable[IPCNamespace] = (), descs: list[Any] | None = None
               ) -> list[IPCNamespace]:
    """Every IPC namespace reachable from the kernel: the root, every task's, every namespace an open
    queue descriptor still pins, plus ``extra`` (namespaces the caller created)."""
    seen: dict[int, IPCNamespace] = {id(k.root_ipc_ns): k.root_ipc_ns}
    for t in list(k.tasks.values()):
        seen.setdefault(id(t.ipc_ns), t.ipc_ns)
    for desc in (descs if descs is not None else _all_descriptions(k)):
        ino = getattr(desc, "inode", None)
        fs = getattr(ino, "fs", None)
        ns = getattr(fs, "ns", None)
        if ns is not None:
            seen.setdefault(id(ns), ns)
    for ns in list(k.ipc_namespaces):  # every namespace whose queues may still need checking
        seen.setdefault(id(ns), ns)
    for ns in extra:
        seen.setdefault(id(ns), ns)
    return list(seen.values())


def id_table(ids: Any) -> dict[int, Any]:
    """The index -> object table of a :class:`mqsentry.kernel.ipc.Registry` (``by_idx``, public for
    the lock-free fast path)."""
    return cast("dict[int, Any]", ids.by_idx)


# -- SysV ------------------------------------------------------------------------------------------------
def check_sysv_store(q: Any, where: str) -> list[str]:
    """The indexed message store of one queue against its counters (caller holds ``q.mu``)."""
    out: list[str] = []
    s = q.store
    slots = s.slots
    live = [(i, b) for i, b in enumerate(slots) if b is not None]
    if s.qnum != len(live):
        out.append(f"{where}: qnum={s.qnum} but {len(live)} messages are stored")
    nbytes = sum(len(b) - 8 for _, b in live)
    if s.cbytes != nbytes:
        out.append(f"{where}: cbytes={s.cbytes} but stored texts total {nbytes}")
    if live:
        if s.head != live[0][0]:
            out.append(f"{where}: head={s.head} but the oldest message is at slot {live[0][0]}")
    elif slots and s.head < len(slots):
        out.append(f"{where}: empty store with head={s.head} inside {len(slots)} slots")
    want: dict[int, list[int]] = {}
    for i, b in live:
        if len(b) < 8:
            out.append(f"{where}: slot {i} holds {len(b)} bytes, shorter than mtype")
            continue
        mtype = int.from_bytes(b[:8], "little", signed=True)
        if mtype < 1:
            out.append(f"{where}: slot {i} has mtype {mtype} < 1")
        want.setdefault(mtype, []).append(s.base + i)
    have = {m: list(f) for m, f in s.fifos.items() if f}
    if have != want:
        out.append(f"{where}: per-type FIFOs {_short(have)} do not match the stored messages {_short(want)}")
    nonempty = sum(1 for f in s.fifos.values() if f)
    if s.nonempty != nonempty:
        out.append(f"{where}: nonempty={s.nonempty} but {nonempty} type FIFOs are non-empty")
    if set(s.types) != set(s.fifos):
        out.append(f"{where}: type heap {sorted(set(s.types))[:8]} != FIFO keys {sorted(s.fifos)[:8]}")
    if s.heads is not None:
        heads = set(s.heads)
        missing = [f[0] for f in s.fifos.values() if f and f[0] not in heads]
        if missing:
            out.append(f"{where}: MSG_EXCEPT head heap lacks the oldest seq of some types: {missing[:8]}")
    return out


def check_sysv_registry(ns: IPCNamespace, quiescent: bool = True, label: str = "ns") -> list[str]:
    """One namespace's SysV queues: id table, key table, allocator state and every queue."""
    out: list[str] = []
    reg = getattr(ns, "msgqueues", None)
    if reg is None:
        return out
    ids = reg.ids
    with _hold(ids.mu, f"{label} msg registry", out, quiescent) as ok:
        if not ok:
            return out
        by_idx = dict(id_table(ids))
        by_key = ids.key_table_locked()
        seq, cursor = ids.seq, ids.cursor
        in_use = ids.in_use
        max_idx = ids.max_idx_locked()
        for idx, q in by_idx.items():
            where = f"{label} msq idx {idx}"
            if not 0 <= idx < IPCMNI:
                out.append(f"{where}: index out of range")
            if q.id & (IPCMNI - 1) != idx or q.id >> IPCMNI_SHIFT != q.seq:
                out.append(f"{where}: id {q.id} (seq {q.seq}) does not name this slot")
            if q.deleted:
                out.append(f"{where}: a deleted queue is still in the id table")
            if q.registry is not reg:
                out.append(f"{where}: queue belongs to another registry")
            if q.key != IPC_PRIVATE and by_key.get(q.key) is not q:
                out.append(f"{where}: keyed queue (key {q.key}) missing from the key table")
            with _hold(q.mu, where, out, quiescent) as qok:
                if qok:
                    out.extend(check_sysv_queue(q, where, quiescent))
        for key, q in by_key.items():
            if key == IPC_PRIVATE:
                out.append(f"{label}: IPC_PRIVATE is in the key table")
            if q.key != key:
                out.append(f"{label}: key table entry {key} holds a queue with key {q.key}")
            if by_idx.get(q.id & (IPCMNI - 1)) is not q:
                out.append(f"{label}: key {key} maps to queue {q.id}, which is not in the id table")
        if in_use != len(by_idx):
            out.append(f"{label}: in_use={in_use} != {len(by_idx)} ids")
        if in_use > IPCMNI:  # msgmni may have been lowered since: only ipc_mni is absolute
            out.append(f"{label}: {in_use} queues exceed ipc_mni")
        want_max = max(by_idx) if by_idx else -1
        if max_idx != want_max:
            out.append(f"{label}: ipc_get_maxidx={max_idx}, highest index is {want_max}")
        if not 0 <= seq < IPCMNI_SEQ_MAX:
            out.append(f"{label}: seq {seq} out of range")
        if not 0 <= cursor <= IPCMNI:
            out.append(f"{label}: idr cursor {cursor} out of range")
        ids_seen = [q.id for q in by_idx.values()]
        if len(set(ids_seen)) != len(ids_seen):
            out.append(f"{label}: duplicate queue ids {sorted(ids_seen)}")
    return out


def check_sysv_queue(q: Any, where: str, quiescent: bool) -> list[str]:
    """One queue (caller holds ``q.mu``): store, limits, waiter records."""
    out = check_sysv_store(q, where)
    if not 0 <= q.qbytes <= 0xFFFF_FFFF_FFFF_FFFF:
        out.append(f"{where}: qbytes {q.qbytes} outside unsigned long")
    if q.mode & ~0o777:
        out.append(f"{where}: mode {q.mode:o} has bits outside 0777")
    if quiescent and (q.receivers or q.senders):
        out.append(f"{where}: {len(q.receivers)} receiver / {len(q.senders)} sender records left with no "
                   "task asleep")
    return out


# -- POSIX -----------------------------------------------------------------------------------------------
def check_posix_queue(q: Any, where: str, quiescent: bool) -> list[str]:
    """One POSIX queue (caller holds ``q.mu``): counters against the stored messages and limits."""
    out: list[str] = []
    n = 0
    size = 0
    st = q.state_locked()
    cached = st.cached_empty  # the one empty node a drained queue keeps until its next message
    if cached is not None and (st.nodes.get(cached) != () or len(st.nodes) != 1):
        out.append(f"{where}: the kept empty node names priority {cached}, whose node is "
                   f"{st.nodes.get(cached, 'gone')}, beside {len(st.nodes) - (cached in st.nodes)} other nodes")
    for prio, d in st.nodes.items():
        if not d and prio != cached:
            out.append(f"{where}: empty FIFO kept for priority {prio} (cached empty node: {cached})")
        if not 0 <= prio < MQ_PRIO_MAX:
            out.append(f"{where}: priority {prio} out of range")
        for m in d:
            n += 1
            size += len(m)
            if len(m) > q.msgsize:
                out.append(f"{where}: a {len(m)}-byte message exceeds mq_msgsize {q.msgsize}")
    index = list(st.prios)  # the priorities that have a node; top caches the last
    if index != sorted(st.nodes) or st.top != (index[-1] if index else -1):
        out.append(f"{where}: priority index {index[:8]} (top {st.top}) does not index the FIFO keys "
                   f"{sorted(st.nodes)[:8]}")
    if q.curmsgs != n:
        out.append(f"{where}: curmsgs={q.curmsgs} but {n} messages are stored")
    if q.qsize != size:
        out.append(f"{where}: QSIZE={q.qsize} but stored messages total {size} bytes")
    if not 0 <= q.curmsgs <= q.maxmsg:
        out.append(f"{where}: curmsgs={q.curmsgs} outside 0..maxmsg={q.maxmsg}")
    if quiescent and (st.senders or st.receivers):
        out.append(f"{where}: {st.senders} sender / {st.receivers} receiver waiters left with no "
                   "task asleep")
    if st.senders and q.curmsgs < q.maxmsg:
        out.append(f"{where}: senders wait although the queue is not full")
    if st.receivers and q.curmsgs:
        out.append(f"{where}: receivers wait although messages are queued")
    return out


def check_posix(k: Kernel, nss: list[IPCNamespace], quiescent: bool = True,
                descs: list[Any] | None = None) -> list[str]:
    """Every mqueue filesystem: queue counts, open counts, queues and the RLIMIT_MSGQUEUE charges."""
    out: list[str] = []
    opens: dict[int, int] = {}  # id(inode) -> live descriptions
    inodes: dict[int, Any] = {}
    for desc in (descs if descs is not None else _all_descriptions(k)):
        if isinstance(desc, QueueFD):
            ino = desc.inode
            inodes[id(ino)] = ino
            opens[id(ino)] = opens.get(id(ino), 0) + 1
    charges: dict[int, int] = {}
    for i, ns in enumerate(nss):
        fs = ns.posix_queues
        if not isinstance(fs, MqueueFilesystem):
            continue
        label = f"mqfs[{i}]"
        with _hold(fs.mu, label, out, quiescent) as ok:
            if not ok:
                continue
            linked = dict(fs.root.children)
            for name, ino in linked.items():
                inodes.setdefault(id(ino), ino)
                if not ino.linked:
                    out.append(f"{label} {name!r}: in the directory but marked unlinked")
                if ino.fs is not fs:
                    out.append(f"{label} {name!r}: inode of another filesystem")
            live = [ino for ino in inodes.values() if ino.fs is fs]
            if fs.queues_count != len(live):
                out.append(f"{label}: queues_count={fs.queues_count} but {len(live)} queues are alive "
                           f"({len(linked)} linked)")
            for ino in live:
                where = f"{label} queue {_name_of(linked, ino)}"
                if ino.opens != opens.get(id(ino), 0):
                    out.append(f"{where}: opens={ino.opens} but {opens.get(id(ino), 0)} descriptions are live")
                if not ino.linked and id(ino) not in opens:
                    out.append(f"{where}: unlinked and closed but not freed")
                charges[ino.charged_uid] = charges.get(ino.charged_uid, 0) + ino.cost
                q = ino.queue
                with _hold(q.mu, where, out, quiescent) as qok:
                    if qok:
                        out.extend(check_posix_queue(q, where, quiescent))
    ub = k.mq_user_bytes
    if True:
        with _hold(ub.mu, "RLIMIT_MSGQUEUE table", out, quiescent) as ok:
            if ok:
                have = ub.charges_locked()
                if have != charges:
                    out.append(f"RLIMIT_MSGQUEUE charges {have} != sum of live queue costs {charges}")
    return out


def _name_of(children: dict[str, Any], ino: Any) -> str:
    for name, x in children.items():
        if x is ino:
            return repr(name)
    return "<unlinked>"


# -- fd tables -------------------------------------------------------------------------------------------
def _tables(k: Kernel) -> list[tuple[Any, Any]]:
    """(thread group, fd table) once per distinct table."""
    seen: dict[int, tuple[Any, Any]] = {}
    for tg in list(k.thread_groups.values()):
        for t in list(tg.tasks):
            table = t.fd_table
            if table is not None and id(table) not in seen:
                seen[id(table)] = (tg, table)
    return list(seen.values())


def _all_descriptions(k: Kernel) -> list[Any]:
    """Every distinct description referenced by any fd table."""
    descs: dict[int, Any] = {}
    for _, table in _tables(k):
        for desc in list(table.files.values()):  # the lock-free mirror of the filled slots
            descs[id(desc)] = desc
    return list(descs.values())


def check_fds(k: Kernel, quiescent: bool = True, nss: list[IPCNamespace] | None = None) -> list[str]:
    """fd tables against description reference counts, and dead processes' tables."""
    out: list[str] = []
    counts: dict[int, int] = {}
    descs: dict[int, Any] = {}
    for tg, table in _tables(k):
        # A process that got a fatal signal while none of its threads was in the kernel dies at its
        # next kernel entry (the sentry runs no user code to interrupt); only a process whose threads
        # have all exited must have closed its files.
        alive = any(not t.exited for t in tg.tasks)
        with _hold(table.mu, f"fd table of pid {tg.tgid}", out, quiescent) as ok:
            if not ok:
                continue
            fds = table.slots_locked()
            files = dict(table.files)
            hint = table.hint
        if files != {fd: d for fd, (d, _) in fds.items() if d is not None}:
            out.append(f"pid {tg.tgid}: the lock-free lookup map disagrees with the fd table")
        if not alive and fds and quiescent and not k.exit_hooks_pending:
            out.append(f"pid {tg.tgid} has exited but its fd table still holds fds {sorted(fds)[:8]}")
        for fd, (desc, _) in fds.items():
            if fd < 0:
                out.append(f"pid {tg.tgid}: negative fd {fd}")
            if desc is None:
                if quiescent:
                    out.append(f"pid {tg.tgid}: fd {fd} is reserved but never filled (leaked reservation)")
                continue
            descs[id(desc)] = desc
            counts[id(desc)] = counts.get(id(desc), 0) + 1
        if any(fd not in fds for fd in range(hint)) and quiescent:
            free = [fd for fd in range(hint) if fd not in fds]
            out.append(f"pid {tg.tgid}: allocation hint {hint} skips free fds {free[:8]}")
    extra = _notification_socket_refs(k, nss if nss is not None else namespaces(k), list(descs.values()))
    for key, desc in descs.items():
        refs = desc.refs
        want = counts[key] + extra.get(key, 0)
        if refs <= 0:
            out.append(f"{type(desc).__name__} referenced by {counts[key]} fds has refcount {refs}")
        elif quiescent and refs != want:
            out.append(f"{type(desc).__name__} has refcount {refs} but {counts[key]} fds"
                       f"{f' + {extra[key]} notifications' if key in extra else ''} refer to it")
    return out


def _notification_socket_refs(k: Kernel, nss: list[IPCNamespace], descs: list[Any]) -> dict[int, int]:
    """References mq_notify(SIGEV_THREAD) registrations hold on netlink sockets, by description."""
    refs: dict[int, int] = {}
    queues = [q for q in (getattr(d, "queue", None) for d in descs) if q is not None]
    for ns in nss:
        fs = ns.posix_queues
        if isinstance(fs, MqueueFilesystem):
            queues.extend(ino.queue for ino in list(fs.root.children.values()))
    if queues:
        for q in {id(q): q for q in queues}.values():
            n = q.notification
            if n is not None and n.sock is not None:
                refs[id(n.sock)] = refs.get(id(n.sock), 0) + 1
    return refs


# -- tasks -------------------------------------------------------------------------------------------------
def check_tasks(k: Kernel, quiescent: bool = True) -> list[str]:
    """Task bookkeeping: no sleeper when nothing runs, signal flags consistent with pending sets."""
    out: list[str] = []
    for t in list(k.tasks.values()):
        if quiescent and t.state == "S":
            out.append(f"{t!r} is asleep although no syscall is running")
        if t.exited or t.tg.exiting or t.tg.group_stop:
            continue
        with k.sig_mu:
            for ps in (t.pending, t.tg.shared_pending):
                qmask = 0
                for info in ps.queue:
                    qmask |= 1 << (info.signo - 1)
                if qmask != ps.mask:
                    out.append(f"{t!r}: pending mask {ps.mask:#x} != queued signals {qmask:#x}")
            private = t.pending.mask & ~t.sig_mask
            shared = t.tg.shared_pending.mask & ~t.sig_mask
            takers = [x for x in t.tg.tasks if not x.exited and x.sigpending
                      and t.tg.shared_pending.mask & ~x.sig_mask]
        if private and not t.sigpending:
            out.append(f"{t!r}: deliverable signals {private:#x} pending but TIF_SIGPENDING is clear")
        if shared and not takers:
            out.append(f"{t!r}: process-directed signals {shared:#x} deliverable but no thread is flagged")
    return out


# -- everything --------------------------------------------------------------------------------------------
def check_kernel(k: Kernel, extra_namespaces: Iterable[IPCNamespace] = (), quiescent: bool = True,
                 tasks: bool = True, internal_seen: int = 0) -> list[str]:
    """Every check above over the whole kernel. ``quiescent``: no syscall is in flight.
    ``internal_seen``: internal errors the caller has already reported (only newer ones count)."""
    out: list[str] = []
    descs = _all_descriptions(k)
    nss = namespaces(k, extra_namespaces, descs)
    for i, ns in enumerate(nss):
        out.extend(check_sysv_registry(ns, quiescent, f"ns[{i}]"))
    out.extend(check_posix(k, nss, quiescent, descs))
    out.extend(check_fds(k, quiescent, nss))
    if tasks:
        out.extend(check_tasks(k, quiescent))
    if k.internal_errors > internal_seen:
        out.append(f"{k.internal_errors - internal_seen} internal error(s); latest: "
                   f"{k.internal_error_log[-1][:2000] if k.internal_error_log else '?'}")
    return out


def _short(d: dict[int, list[int]]) -> str:
    items = sorted(d.items())[:4]
    return "{" + ", ".join(f"{m}: {v[:6]}{'...' if len(v) > 6 else ''}" for m, v in items) + \
        (", ..." if len(d) > 4 else "") + "}"


__all__ = ["check_kernel", "check_sysv_registry", "check_sysv_queue", "check_sysv_store", "check_posix",
           "check_posix_queue", "check_fds", "check_tasks", "namespaces", "LOCK_TIMEOUT"]
