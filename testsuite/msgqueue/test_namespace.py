"""IPC namespaces: unshare(CLONE_NEWIPC) gives a fresh queue registry, fresh IDs and fresh limits.

Linux counterpart: ipc/namespace.c create_ipc_ns/msg_init_ns, ipc/msg.c (per-namespace msg_ids and
msg_ctl*). gVisor counterpart: pkg/sentry/kernel/ipc_namespace.go (no msgqueue.cc test).
"""

from __future__ import annotations

from mqsentry.abi.linux.errno import EINVAL, ENOENT
from mqsentry.abi.linux.ipc import IPC_CREAT
from mqsentry.abi.linux.msgqueue import MSG_INFO, MSGMAX, MSGMNB
from mqsentry.abi.linux.sched import CLONE_NEWIPC
from mqsentry.testsuite.libc import Proc, expect_errno
from mqsentry.testsuite.msgqueue import KEY, new_queue
from mqsentry.testsuite.targets.base import Target


def test_unshare_gives_fresh_registry_and_limits(target: Target, proc: Proc) -> None:
    q = proc.msgget(KEY, IPC_CREAT | 0o600)
    new_queue(proc)
    proc.msgsnd(q, 1, b"old namespace")
    target.write_file("/proc/sys/kernel/msgmax", b"100")
    target.write_file("/proc/sys/kernel/msgmnb", b"200")
    child = proc.fork()
    child.unshare(CLONE_NEWIPC)
    with expect_errno(ENOENT):
        child.msgget(KEY, 0)
    with expect_errno(EINVAL):
        child.msgstat(q)
    ret, info = child.msgctl_info(MSG_INFO)
    assert (ret, info["msgpool"], info["msgmap"], info["msgmax"], info["msgmnb"]) == (0, 0, 0, MSGMAX, MSGMNB)
    mine = child.msgget(KEY, IPC_CREAT | 0o600)
    assert mine == 0  # IDs start over
    child.msgsnd(mine, 2, b"x" * 1000)  # above the old namespace's msgmax
    assert child.msgstat(mine).qbytes == MSGMNB
    # The original namespace is untouched.
    assert proc.msgget(KEY, 0) == q
    assert proc.msgrcv(q, 64) == (1, b"old namespace")
    assert proc.msgctl_info(MSG_INFO)[1]["msgpool"] == 2
