"""IPC namespaces and POSIX queues: descriptors survive unshare(CLONE_NEWIPC) while names resolve in
the new namespace, per-namespace sysctls start at their defaults, a mount shows its mounter's
namespace, RLIMIT_MSGQUEUE charges span namespaces.

Linux counterpart: ipc/namespace.c create_ipc_ns, ipc/mqueue.c mq_init_ns/mqueue_get_tree (mounts bind
to current's ipc_ns), ucounts for RLIMIT_MSGQUEUE. gVisor counterpart: test/syscalls/linux/mq.cc
ChangeIpcNamespace.
"""

from __future__ import annotations

import os

from mqsentry.abi.linux.capability import CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EMFILE, ENOENT
from mqsentry.abi.linux.file import O_RDONLY, O_RDWR
from mqsentry.abi.linux.limits import RLIMIT_MSGQUEUE
from mqsentry.abi.linux.sched import CLONE_NEWIPC
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.mq import MAXMSG, MSGSIZE, NAME, O_DIRECTORY, cost, create, mountpoint, status, user
from mqsentry.testsuite.targets.base import Target


def test_change_ipc_namespace(proc: Proc) -> None:
    fd = create(proc)
    proc.mq_unlink(NAME)
    proc.unshare(CLONE_NEWIPC)
    assert proc.read_fd(fd, 59) == status()[:59]
    proc.mq_close(fd)
    with expect_errno(ENOENT):
        proc.mq_unlink(NAME)


def test_descriptor_keeps_old_namespace_queue(target: Target, proc: Proc) -> None:
    fd = create(proc)
    proc.unshare(CLONE_NEWIPC)
    with expect_errno(ENOENT):
        proc.mq_open(NAME, O_RDWR)
    with expect_errno(ENOENT):
        proc.mq_unlink(NAME)
    proc.mq_send(fd, b"from the new namespace", 2)
    # The name in the new namespace is free and names another queue.
    nfd = create(proc)
    assert proc.mq_getattr(nfd).curmsgs == 0
    # A process still in the test's original namespace sees the old queue and the message.
    old = Proc(target.spawn())
    ofd = old.mq_open(NAME, O_RDONLY)
    assert old.mq_receive(ofd, MSGSIZE) == (b"from the new namespace", 2)


def test_new_namespace_has_default_sysctls(target: Target, proc: Proc) -> None:
    target.write_file("/proc/sys/fs/mqueue/msg_default", b"5\n")
    target.write_file("/proc/sys/fs/mqueue/msg_max", b"5\n")
    assert proc.mq_getattr(create(proc, "/old")).maxmsg == 5
    target.write_file("/proc/sys/fs/mqueue/queues_max", b"0\n")
    proc.unshare(CLONE_NEWIPC)
    proc.drop_cap(CAP_SYS_RESOURCE)
    a = proc.mq_getattr(create(proc, "/a"))
    assert (a.maxmsg, a.msgsize) == (MAXMSG, MSGSIZE)
    create(proc, "/b", attr=(MAXMSG, 16))
    # The original namespace keeps its settings.
    assert target.read_file("/proc/sys/fs/mqueue/msg_default").strip() == b"5"


def test_mount_shows_mounter_namespace(target: Target, proc: Proc) -> None:
    create(proc, "/old")
    m1 = mountpoint(target, proc, "mq1")
    proc.unshare(CLONE_NEWIPC)
    create(proc, "/new")
    m2 = mountpoint(target, proc, "mq2")
    o = O_RDONLY | O_DIRECTORY[target.arch]
    assert sorted(n for n, _, _ in proc.getdents(proc.openat(m1, o))) == [".", "..", "old"]
    assert sorted(n for n, _, _ in proc.getdents(proc.openat(m2, o))) == [".", "..", "new"]
    proc.stat_path(os.path.join(m1, "old"))
    with expect_errno(ENOENT):
        proc.stat_path(os.path.join(m2, "old"))


def test_rlimit_spans_namespaces(target: Target, proc: Proc) -> None:
    c = cost(4, 16)
    p = user(target, caps=1 << CAP_SYS_ADMIN)
    p.prlimit(RLIMIT_MSGQUEUE, (c, c))
    fd = create(p, "/a", attr=(4, 16))
    p.unshare(CLONE_NEWIPC)
    with expect_errno(EMFILE):
        create(p, "/b", attr=(4, 16))
    # Freed in the first namespace (closed by p, unlinked there by root): room again.
    p.mq_close(fd)
    proc.mq_unlink("/a")
    create(p, "/b", attr=(4, 16))
