"""epoll instances and poll(2).

Linux counterpart: fs/eventpoll.c (``ep_insert``, ``ep_modify``, ``ep_remove``, ``ep_poll_callback``,
``ep_send_events``, ``ep_poll``, ``eventpoll_release``) and fs/select.c (``do_sys_poll``,
``do_poll``, ``do_pollfd``). gVisor counterpart: pkg/sentry/vfs/epoll.go (``EpollInstance``,
``epollInterest``, ``ReadEvents``) and pkg/sentry/syscalls/linux/sys_poll.go.

Readiness comes from ``FileDescription.readiness`` and changes are learned through
``FileDescription.event_register``: an epoll interest registers a callback entry that puts it on the
ready list and wakes the instance's waiters; poll registers the task itself as the waker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import EEXIST, EINTR, EINVAL, ELOOP, ENOENT, ERESTARTNOHAND, ETIMEDOUT
from mqsentry.abi.linux.file import (
    EPOLL_CTL_ADD,
    EPOLL_CTL_DEL,
    EPOLL_CTL_MOD,
    EPOLL_PRIVATE_BITS,
    EPOLLERR,
    EPOLLET,
    EPOLLEXCLUSIVE,
    EPOLLHUP,
    EPOLLIN,
    EPOLLONESHOT,
    EPOLLOUT,
    EPOLLRDNORM,
    EPOLLWAKEUP,
    O_RDWR,
    POLLNVAL,
)
from mqsentry.fs.vfs.file import DEFAULT_POLLMASK, FileDescription
from mqsentry.kernel import waiter
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.fs.vfs.fdtable import FDTable
    from mqsentry.kernel.context import TaskContext

#: EPOLLEXCLUSIVE_OK_BITS.
EPOLLEXCLUSIVE_OK_BITS = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE
#: EP_MAX_NESTS: how deep epoll instances may watch each other.
EP_MAX_NESTS = 4


def file_readiness(desc: FileDescription, mask: int) -> int:
    """``vfs_poll`` masked to ``mask``: files without a poll method report DEFAULT_POLLMASK."""
    if not desc.pollable:
        return DEFAULT_POLLMASK & mask
    return desc.readiness(mask) & mask


class _Interest:
    """One watched (file, fd) pair (Linux ``struct epitem``).

    Guarded by the owning ``EpollInstance.mu``: ``events``, ``data``, ``ready``. ``desc``, ``fd`` and
    ``entry`` are immutable."""

    __slots__ = ("ep", "desc", "fd", "events", "data", "entry", "ready")

    def __init__(self, ep: EpollInstance, desc: FileDescription, fd: int, events: int, data: int) -> None:
        self.ep = ep
        self.desc = desc
        self.fd = fd
        self.events = events
        self.data = data
        self.ready = False
        self.entry = waiter.Entry(None, waiter.ALL_EVENTS, self._fired)

    def _fired(self, mask: int) -> None:
        self.ep._callback(self, mask)


class EpollInstance(FileDescription):
    """An epoll file (Linux ``struct eventpoll``).

    ``mu`` guards ``_interests`` ((file, fd) -> interest) and ``_ready`` (interests on the ready
    list, in order) besides the FileDescription fields. Lock order: ``EpollInstance.mu`` ->
    waiter queue locks; callbacks from watched files take ``mu`` with no other mqsentry.fs.vfs lock held
    (a file notifies its queue after dropping its own locks)."""

    pollable = True

    def __init__(self) -> None:
        super().__init__(O_RDWR)
        self._interests: dict[tuple[FileDescription, int], _Interest] = {}
        self._ready: dict[_Interest, None] = {}
        self._waiters = waiter.Queue()

    # -- interest list (epoll_ctl) --------------------------------------------------------------------------
    def ctl(self, op: int, fd: int, desc: FileDescription, events: int, data: int) -> None:
        """``do_epoll_ctl`` after the fd checks."""
        if op != EPOLL_CTL_DEL and events & EPOLLEXCLUSIVE:
            if op == EPOLL_CTL_MOD:
                raise SysError(EINVAL)
            if op == EPOLL_CTL_ADD and (isinstance(desc, EpollInstance) or events & ~EPOLLEXCLUSIVE_OK_BITS):
                raise SysError(EINVAL)
        if op == EPOLL_CTL_ADD and isinstance(desc, EpollInstance):
            if desc._reaches(self) or self._depth_up() + desc._depth_down() + 1 > EP_MAX_NESTS:
                raise SysError(ELOOP)
        key = (desc, fd)
        with self.mu:
            it = self._interests.get(key)
        if op == EPOLL_CTL_ADD:
            if it is not None:
                raise SysError(EEXIST)
            it = _Interest(self, desc, fd, events | EPOLLERR | EPOLLHUP, data)
            with self.mu:
                if key in self._interests:
                    raise SysError(EEXIST)
                self._interests[key] = it
            links = desc.__dict__.setdefault("_epoll_links", {})
            links[it] = None
            desc.event_register(it.entry)
            self._poll_item(it)
        elif op == EPOLL_CTL_DEL:
            if it is None:
                raise SysError(ENOENT)
            self._remove(it)
        elif op == EPOLL_CTL_MOD:
            if it is None:
                raise SysError(ENOENT)
            with self.mu:
                if it.events & EPOLLEXCLUSIVE:
                    raise SysError(EINVAL)
                it.events = events | EPOLLERR | EPOLLHUP
                it.data = data
            self._poll_item(it)
        else:
            raise SysError(EINVAL)

    def _remove(self, it: _Interest) -> None:
        it.desc.event_unregister(it.entry)
        links = it.desc.__dict__.get("_epoll_links")
        if links is not None:
            links.pop(it, None)
        with self.mu:
            key = (it.desc, it.fd)
            if self._interests.get(key) is it:  # a later interest under the same key stays
                del self._interests[key]
            self._ready.pop(it, None)

    def file_released(self, desc: FileDescription) -> None:
        """``eventpoll_release``: the watched file's last reference is gone; forget its interests.

        The file's own list of interests (``_epoll_links``, Linux's ``file->f_ep``) names them, so
        this costs O(the file's watches), not O(this instance's interest list)."""
        links = desc.__dict__.get("_epoll_links")
        for it in list(links or ()):
            if it.ep is self:
                self._remove(it)

    def _poll_item(self, it: _Interest) -> None:
        """After ADD/MOD: queue the interest if its file is ready now (``ep_item_poll``)."""
        if file_readiness(it.desc, it.events & ~EPOLL_PRIVATE_BITS):
            self._callback(it, waiter.ALL_EVENTS)

    def _callback(self, it: _Interest, mask: int) -> None:
        """``ep_poll_callback``: put the interest on the ready list and wake waiters."""
        with self.mu:
            ev = it.events & ~EPOLL_PRIVATE_BITS
            if not ev or (mask and not mask & ev) or (it.desc, it.fd) not in self._interests:
                return
            self._ready[it] = None
        self._waiters.notify(waiter.EVENT_IN)
        super_q = self._events
        if super_q is not None:
            super_q.notify(waiter.EVENT_IN | waiter.EVENT_RDNORM)

    # -- nesting ---------------------------------------------------------------------------------------------
    def _children(self) -> list[EpollInstance]:
        with self.mu:
            return [d for (d, _) in self._interests if isinstance(d, EpollInstance)]

    def _reaches(self, target: EpollInstance, depth: int = 0) -> bool:
        if self is target:
            return True
        if depth > EP_MAX_NESTS:
            return True
        return any(c._reaches(target, depth + 1) for c in self._children())

    def _depth_down(self, depth: int = 0) -> int:
        if depth > EP_MAX_NESTS:
            return depth
        kids = self._children()
        return max((c._depth_down(depth + 1) for c in kids), default=depth) - 0

    def _depth_up(self) -> int:
        best = 0
        links = self.__dict__.get("_epoll_links") or {}
        for it in list(links):
            best = max(best, 1 + it.ep._depth_up())
        return best

    # -- reading events -----------------------------------------------------------------------------------------
    def collect(self, maxevents: int) -> list[tuple[int, int]]:
        """``ep_send_events``: up to ``maxevents`` (events, data) pairs; level-triggered interests stay
        on the ready list, edge-triggered ones leave it, one-shot ones are disarmed."""
        out: list[tuple[int, int]] = []
        with self.mu:
            batch = list(self._ready)
            self._ready.clear()
        requeue: list[_Interest] = []
        for i, it in enumerate(batch):
            if len(out) >= maxevents:
                requeue.extend(batch[i:])
                break
            with self.mu:
                ev = it.events
                data = it.data
                live = (it.desc, it.fd) in self._interests
            if not live:
                continue
            revents = file_readiness(it.desc, ev & ~EPOLL_PRIVATE_BITS)
            if not revents:
                continue
            out.append((revents, data))
            with self.mu:
                if ev & EPOLLONESHOT:
                    it.events &= EPOLL_PRIVATE_BITS
                elif not ev & EPOLLET:
                    requeue.append(it)
        if requeue:
            with self.mu:
                fresh = dict(self._ready)
                self._ready.clear()
                for it in requeue:
                    self._ready[it] = None
                self._ready.update(fresh)
        return out

    def put_back(self, events: list[tuple[int, int]]) -> None:
        """Events that could not be copied out are not lost: re-check every interest."""
        with self.mu:
            its = list(self._interests.values())
        for it in its:
            self._poll_item(it)

    def has_events(self) -> bool:
        with self.mu:
            batch = list(self._ready)
        return any(file_readiness(it.desc, it.events & ~EPOLL_PRIVATE_BITS) for it in batch)

    # -- FileDescription ---------------------------------------------------------------------------------------
    def seek(self, t: TaskContext, offset: int, whence: int) -> int:
        """``noop_llseek``: succeeds without moving."""
        with self.mu:
            return self.pos

    def readiness(self, mask: int) -> int:
        """An epoll fd is readable while it has events (``ep_eventpoll_poll``)."""
        if self.has_events():
            return mask & (waiter.EVENT_IN | waiter.EVENT_RDNORM)
        return 0

    def wait_register(self, e: waiter.Entry) -> None:
        self._waiters.register(e)

    def wait_unregister(self, e: waiter.Entry) -> None:
        self._waiters.unregister(e)

    def release(self) -> None:
        """``ep_free``: drop every interest."""
        with self.mu:
            its = list(self._interests.values())
        for it in its:
            self._remove(it)


def notify_released(desc: FileDescription) -> None:
    """Called when ``desc`` loses its last reference: remove it from every epoll set."""
    links = desc.__dict__.get("_epoll_links")
    if links:
        # Each link is one interest: remove it from its instance directly (eventpoll_release walks
        # file->f_ep the same way) instead of making every instance search its whole interest list.
        for it in list(links):
            it.ep._remove(it)


def epoll_wait(t: TaskContext, ep: EpollInstance, maxevents: int, deadline_ns: int | None,
               timeout_zero: bool) -> list[tuple[int, int]]:
    """``ep_poll``: events, or [] on timeout; SysError(EINTR) when a signal arrives first."""
    got = ep.collect(maxevents)
    if got or timeout_zero:
        return got
    if t.sigpending:
        raise SysError(EINTR)
    entry = waiter.Entry(t, waiter.ALL_EVENTS)
    ep.wait_register(entry)
    try:
        while True:
            t.clear_wakeup()
            got = ep.collect(maxevents)
            if got:
                return got
            r = t.block(deadline_ns)
            if r == EINTR:
                got = ep.collect(maxevents)
                if got:
                    return got
                raise SysError(EINTR)
            if r == ETIMEDOUT:
                return ep.collect(maxevents)
    finally:
        ep.wait_unregister(entry)


def do_poll(t: TaskContext, table: FDTable, fds: list[tuple[int, int]], deadline_ns: int | None,
            timeout_zero: bool) -> list[int]:
    """``do_poll``: the revents of each (fd, events) pair. Blocks until one is non-zero, the deadline
    passes or a signal arrives (SysError(ERESTARTNOHAND))."""
    descs: list[FileDescription | None] = []
    try:
        for fd, _ in fds:
            if fd < 0:
                descs.append(None)
                continue
            try:
                ref = table.get_ref(fd)
            except SysError:
                descs.append(None)
                continue
            if ref.is_path:
                ref.decref()
                descs.append(None)
                continue
            descs.append(ref)
        filters = [(ev & 0xFFFF) | EPOLLERR | EPOLLHUP for _, ev in fds]

        def scan() -> tuple[list[int], int]:
            revents = []
            count = 0
            for (fd, _), d, flt in zip(fds, descs, filters):
                if fd < 0:
                    r = 0
                elif d is None:
                    r = POLLNVAL
                else:
                    r = file_readiness(d, flt)
                if r:
                    count += 1
                revents.append(r)
            return revents, count

        if timeout_zero:
            rev, count = scan()
            if not count and t.sigpending:
                raise SysError(ERESTARTNOHAND)
            return rev
        entries = []
        for d, flt in zip(descs, filters):
            if d is not None:
                e = waiter.Entry(t, flt)
                d.event_register(e)
                entries.append((d, e))
        try:
            while True:
                t.clear_wakeup()
                rev, count = scan()
                if count:
                    return rev
                if t.sigpending:
                    raise SysError(ERESTARTNOHAND)
                r = t.block(deadline_ns)
                if r == ETIMEDOUT:
                    rev, _ = scan()
                    return rev
        finally:
            for d, e in entries:
                d.event_unregister(e)
    finally:
        for d in descs:
            if d is not None:
                d.decref()


__all__ = ["EpollInstance", "epoll_wait", "do_poll", "file_readiness", "notify_released", "EPOLLRDNORM"]
