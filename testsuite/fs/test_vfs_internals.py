"""Kernel-side VFS lifecycle that no syscall can observe directly: flush on every close, release on
the last reference, process exit closing every fd, and epoll forgetting released files.

Linux counterpart: fs/file.c (filp_close -> f_op->flush, fput -> f_op->release, close_files) and
fs/eventpoll.c (eventpoll_release). gVisor counterpart: pkg/sentry/kernel/fd_table.go (RemoveAll on
exit) and vfs.FileDescription.DecRef.
"""

from __future__ import annotations

import pytest

from mqsentry.abi.linux.file import EPOLL_CTL_ADD, EPOLLIN
from mqsentry.fs.vfs import FileDescription, fd_table
from mqsentry.fs.vfs.epoll import EpollInstance
from mqsentry.kernel.context import TaskContext
from mqsentry.kernel.task import Task
from mqsentry.testsuite.targets.base import Target

#: These tests reach into the sentry's kernel objects.
sentry_only = pytest.mark.only_target("sentry")


class Probe(FileDescription):
    """A description that records who flushed it and whether it was released (test-only; ``mu``
    from FileDescription guards nothing extra)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.flushed_by: list[int] = []
        self.released = 0

    def flush(self, t: TaskContext) -> None:
        self.flushed_by.append(t.tg.tgid)

    def release(self) -> None:
        self.released += 1


def _task(target: Target) -> Task:
    return target.spawn().task  # type: ignore[attr-defined]


@sentry_only
def test_exit_closes_every_fd(target: Target) -> None:
    t = _task(target)
    p = Probe()
    fd = fd_table(t).install(t, p, False)
    p.decref()
    fd_table(t).install(t, p, True, minfd=fd + 5)
    child = t.fork()
    assert p.refs == 4
    child.exit_group(0)
    assert p.flushed_by == [child.pid, child.pid] and p.released == 0 and p.refs == 2
    th = t.clone_thread()
    th.exit(0)  # one thread leaving closes nothing
    assert p.refs == 2
    t.exit_group(0)
    assert p.released == 1 and p.refs == 0 and p.flushed_by[2:] == [t.pid, t.pid]


@sentry_only
def test_close_flushes_dup2_replaces(target: Target) -> None:
    t = _task(target)
    a, b = Probe(), Probe()
    table = fd_table(t)
    fa = table.install(t, a, False)
    fb = table.install(t, b, False)
    a.decref()
    b.decref()
    assert t.syscall(t.kernel.syscall_table.number("dup3"), fa, fb, 0) == fb
    assert b.flushed_by == [t.pid] and b.released == 1
    table.close(t, fa)
    assert a.flushed_by == [t.pid] and a.released == 0
    table.close(t, fb)
    assert a.released == 1


@sentry_only
def test_epoll_forgets_released_file(target: Target) -> None:
    t = _task(target)
    table = fd_table(t)
    ep = EpollInstance()
    epfd = table.install(t, ep, False)
    ep.decref()
    inner = EpollInstance()
    ifd = table.install(t, inner, False)
    inner.decref()
    ep.ctl(EPOLL_CTL_ADD, ifd, inner, EPOLLIN, 1)
    assert len(ep._interests) == 1
    table.close(t, ifd)
    assert len(ep._interests) == 0 and inner.refs == 0
    table.close(t, epfd)
