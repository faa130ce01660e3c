"""The composition root and what it wires: one kernel type, every handler module, no import-time
registration, and the POSIX registry reaping that goes through the kernel's typed interfaces.

Linux counterpart: start_kernel's initcalls (what is registered) and ipc/mqueue.c's per-namespace
superblock lifetime (``mq_clear_sbinfo``, ``kill_litter_super``, the RLIMIT_MSGQUEUE charge of
``mqueue_get_inode``). gVisor counterpart: runsc/boot (``Loader``) and fsimpl/mqfs ``RegistryImpl``.
Sentry internals: the charges are read from the kernel, so these run on the sentry only.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import mqsentry
import mqsentry.kernel
from mqsentry.abi.linux.file import O_CREAT, O_RDWR
from mqsentry.abi.linux.limits import RLIMIT_MSGQUEUE
from mqsentry.abi.linux.sched import CLONE_NEWIPC
from mqsentry.boot import Kernel
from mqsentry.syscalls import linux as syscalls_linux
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.sentry import SentryTarget


def test_the_public_kernel_is_the_wired_one() -> None:
    assert mqsentry.Kernel is Kernel
    assert mqsentry.kernel.Kernel is Kernel
    k = Kernel(arch="arm64")
    assert k.syscall_table.arch == "arm64"
    assert set(k.vfs.filesystem_types) == {"tmpfs", "mqueue"}
    assert k.root_ipc_ns.posix_queues is not Kernel().root_ipc_ns.posix_queues  # nothing shared


def test_every_handler_module_is_in_the_table() -> None:
    """A handler module left out of HANDLER_TABLES would be a silent ENOSYS for all its calls."""
    here = pathlib.Path(syscalls_linux.__file__).parent
    modules = {p.stem for p in here.glob("sys_*.py")}
    assert modules == {name for name, _ in syscalls_linux.HANDLER_TABLES}


def test_importing_a_lower_layer_registers_nothing() -> None:
    """Leaf and engine modules import without the kernel core or the composition root (nothing
    below them registers itself into anything)."""
    code = ("import sys, mqsentry.kernel.waiter, mqsentry.kernel.msgqueue, mqsentry.kernel.mq, mqsentry.fs.vfs, "
            "mqsentry.fs.mqfs, mqsentry.fs.proc\n"
            "loaded = sorted(m for m in sys.modules if m in ('mqsentry.boot', 'mqsentry.kernel.kernel', "
            "'mqsentry.kernel.task', 'mqsentry.syscalls.linux'))\n"
            "print(','.join(loaded))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == ""


@pytest.mark.parametrize("how", ["mq_open", "open_in_mount"])
def test_a_dead_namespaces_queues_are_reaped_once_no_mount_shows_them(how: str) -> None:
    """A namespace that dies while its mqueue fs is mounted keeps its queues (and their
    RLIMIT_MSGQUEUE charge) until the last mount goes; a creation that then needs the charge reaps
    them, whether it is mq_open or open(O_CREAT) in a mount."""
    target = SentryTarget()
    try:
        k = target.kernel
        p = Proc(target.spawn())
        p.mkdir("/m")
        child = p.fork()
        child.unshare(CLONE_NEWIPC)
        child.mount("none", "/m", "mqueue")
        child.mq_close(child.mq_open("/dead", O_CREAT | O_RDWR))
        cost = k.mq_user_bytes.charged(0)
        assert cost > 0
        child.exit()
        assert k.mq_user_bytes.charged(0) == cost  # still mounted: the queue lives on
        p.umount("/m")
        p.prlimit(RLIMIT_MSGQUEUE, (cost + cost // 2, cost + cost // 2))
        if how == "mq_open":
            fd = p.mq_open("/live", O_CREAT | O_RDWR)
        else:
            p.mkdir("/m2")
            p.mount("none", "/m2", "mqueue")
            fd = p.openat("/m2/live", O_CREAT | O_RDWR, 0o600)
        assert fd >= 0
        assert k.mq_user_bytes.charged(0) == cost  # the dead namespace's queue was dropped
    finally:
        target.close()
