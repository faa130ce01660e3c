"""IPC namespace death (sentry internals: what happens is invisible from inside, so this checks the
kernel's state directly). Linux: when the last task leaves a namespace, ``free_ipcs`` removes every
SysV queue as IPC_RMID would, and the internal mqueue mount goes away with it."""

from __future__ import annotations

from mqsentry.abi.linux import sysno
from mqsentry.abi.linux.sched import CLONE_NEWIPC
from mqsentry.boot import Kernel

N = sysno.AMD64


def _queue(t: object) -> int:
    return t.syscall(N["msgget"], 0, 0o1600)  # type: ignore[attr-defined]


def test_unshare_by_the_last_task_frees_the_old_namespace() -> None:
    k = Kernel()
    t = k.new_task()
    assert t.syscall(N["unshare"], CLONE_NEWIPC) == 0
    ns = t.ipc_ns
    assert _queue(t) == 0
    assert len(ns.msgqueues.by_idx) == 1
    assert t.syscall(N["unshare"], CLONE_NEWIPC) == 0
    assert ns.dead and not ns.msgqueues.by_idx
    assert not k.root_ipc_ns.dead  # the root namespace never dies


def test_namespace_lives_while_a_task_is_in_it() -> None:
    k = Kernel()
    t = k.new_task()
    assert t.syscall(N["unshare"], CLONE_NEWIPC) == 0
    ns = t.ipc_ns
    child = t.fork()
    assert _queue(t) == 0
    t.exit_group(0)
    assert not ns.dead and len(ns.msgqueues.by_idx) == 1  # the child is still in it
    child.exit_group(0)
    assert ns.dead and not ns.msgqueues.by_idx
