"""Run a real program to completion with its message-queue syscalls served (the library half of
``mqsentry run``; the command line lives in tools/run.py).

Linux counterpart: none. gVisor counterpart: ``runsc do`` (run a command in a sandbox), here for one
subsystem only.
"""

from __future__ import annotations

import select
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mqsentry.kernel.platform import launch
from mqsentry.kernel.platform.calls import MOUNTS, MOUNTS_I386, OBSERVED, OBSERVED_I386, SERVED, SERVED_I386
from mqsentry.kernel.platform.seccomp import Listener

if TYPE_CHECKING:
    from mqsentry.boot import Kernel
    from mqsentry.kernel.platform.ipcns import NamespaceMap
    from mqsentry.kernel.platform.loop import Platform
    from mqsentry.kernel.platform.mqmount import MqMounts
    from mqsentry.kernel.platform.seccomp import Notification


class LazyKernel:
    """The sentry kernel and its namespace map, built on first use: a program that never makes a
    served call (and never reads the IPC /proc files) starts without the sentry being imported at all.
    ``get`` may be called from any thread; ``_mu`` guards the one-time construction."""

    def __init__(self, kernel: Kernel | None = None) -> None:
        self._mu = threading.Lock()
        self._kernel = kernel
        self._nsmap: NamespaceMap | None = None

    def get(self) -> tuple[Kernel, NamespaceMap]:
        with self._mu:
            if self._kernel is None:
                from mqsentry.boot import Kernel

                self._kernel = Kernel(arch="amd64")
            if self._nsmap is None:
                from mqsentry.kernel.platform.ipcns import NamespaceMap

                self._nsmap = NamespaceMap(self._kernel)
            return self._kernel, self._nsmap

    def built(self) -> NamespaceMap | None:
        return self._nsmap


def build_platform(kernel: Kernel, listener: Listener, use_fuse: bool = True,
                   mounts: MqMounts | None = None, refresh: Callable[[], None] | None = None,
                   nsmap: NamespaceMap | None = None) -> Platform:
    """The platform with every available backend attached (mq descriptors once the POSIX engine
    exists; mqueue mounts when FUSE can be mounted; ``mounts``: the servers already covering the
    launcher's mqueue mounts); with ``nsmap``, its mirrored user namespaces are the ones the /proc
    file server uses too."""
    from mqsentry.kernel.platform.loop import Platform

    plat = Platform(kernel, listener, users=nsmap.users if nsmap is not None else None)
    try:
        from mqsentry.kernel.platform import mqfd
    except ImportError:  # pragma: no cover - the POSIX part is optional
        return plat
    files = mqfd.attach(plat, use_fuse=use_fuse)
    if mounts is not None or (use_fuse and _fuse_ok()):
        from mqsentry.kernel.platform import mqmount

        mqmount.attach(plat, mounts, files, refresh)
    return plat


def _fuse_ok() -> bool:
    from mqsentry.kernel.platform import fuse

    return fuse.fuse_available() is None


def _cover_mqueue_mounts(lazy: LazyKernel) -> tuple[MqMounts | None, list[tuple[int, bytes, bytes, int]]]:
    """Servers for the mqueue mounts the program's namespace starts with (none on most hosts: then
    nothing is built), showing the initial IPC namespace, and the launcher's covers for them."""
    found = launch.mqueue_mounts()
    if not found:
        return None, []
    from mqsentry.kernel.platform import mqmount, userns

    k = lazy.get()[0]
    mounts = mqmount.MqMounts(userns.OwnerNamespace().creds_for)
    covers = []
    for point, source, flags in found:
        srv = mounts.new_server(k.root_ipc_ns.posix_queues)  # type: ignore[arg-type]
        covers.append((srv.dev, point, source, flags))
    return mounts, covers


def _apply_sysctls(k: Kernel, sysctls: Sequence[tuple[str, int]]) -> None:
    from mqsentry.abi.linux.errno import errno_name
    from mqsentry.kernel.errors import SysError

    for name, value in sysctls:
        try:
            k.sysctl_write(name, value)
        except KeyError:
            raise ValueError(f"unknown sysctl {name!r}") from None
        except SysError as e:
            raise ValueError(f"sysctl {name}={value}: {errno_name(e.errno)} (out of range)") from None


def _first_served(listener: Listener) -> Notification | None:
    """Wait for the program's first served call and receive it; None if every task is gone first.
    Observed calls before it (the program's own execve, a setuid) are let through at once: there is
    no sentry task yet whose credentials or namespace they could make stale."""
    from mqsentry.kernel.platform.calls import OBSERVED, OBSERVED_I386
    from mqsentry.kernel.platform.seccomp import AUDIT_ARCH_I386

    observed = frozenset(OBSERVED)
    observed_i386 = frozenset(OBSERVED_I386)
    mounts = MOUNTS  # fsopen has the same number on i386; mount's i386 number is not a served call's
    p = select.poll()
    p.register(listener.fd, select.POLLIN)
    while True:
        try:
            events = p.poll()
        except InterruptedError:
            continue
        for _fd, ev in events:
            if not ev & select.POLLIN:
                return None
            n = listener.recv()
            if n is None:
                continue
            if n.nr in (observed_i386 if n.arch == AUDIT_ARCH_I386 else observed):
                listener.send_continue(n.id)
                continue
            if n.nr in mounts:
                from mqsentry.kernel.platform import mqmount

                screen = mqmount.screen_mount if n.nr == mounts[0] else mqmount.screen_fsopen
                if not screen(n):
                    listener.send_continue(n.id)  # another file system: the host's business
                    continue
            return n


def run_program(argv: list[str], sysctls: Sequence[tuple[str, int]] = (), use_fuse: bool = True,
                sync: bool = True, stats: bool = False, kernel: Kernel | None = None,
                listener_factory: Callable[[int], Listener] = Listener, **popen_kw: Any) -> int:
    """Run ``argv`` to completion under a fresh sentry; returns its exit status as a shell does
    (128 + signal number when it was killed). ``popen_kw`` (stdin, stdout, stderr, cwd, env) go to
    the program's launch. ``listener_factory`` wraps the listener fd (tests substitute a listener
    that injects faults).

    The sentry is built when the program first needs it (its first served call, or a read of the
    IPC /proc files), unless a kernel, sysctls or statistics were asked for: start-up then costs
    the launcher only."""
    lazy = LazyKernel(kernel)
    if sysctls:
        _apply_sysctls(lazy.get()[0], sysctls)  # errors before anything runs
    from mqsentry.kernel.platform import procfiles

    proc = procfiles.start(lazy.get) if use_fuse else None
    # mount(2) and fsopen(2) are in the filter only when mqueue mounts can be served (FUSE): the
    # platform must then pick them out (mqmount.py), or they would reach the in-process handlers.
    serve_mounts = use_fuse and _fuse_ok()
    mounts, covers = _cover_mqueue_mounts(lazy) if serve_mounts else (None, [])
    mount_nrs, mount_nrs32 = (MOUNTS, MOUNTS_I386) if serve_mounts else ((), ())
    try:
        launched = launch.spawn(argv, [*SERVED, *mount_nrs], list(OBSERVED), notify32=(*SERVED_I386, *mount_nrs32),
                                observe32=OBSERVED_I386, proc_fd=proc.dev if proc else -1, covers=covers, **popen_kw)
    except BaseException:
        if proc is not None:
            proc.close()
        if mounts is not None:
            mounts.close()
        raise
    if proc is not None:
        proc.seal()
    if mounts is not None:
        for srv, dev in zip(list(mounts.servers), launched.covered, strict=False):
            srv.st_dev = dev
            srv.start()
    listener = listener_factory(launched.listener_fd)
    if sync:
        listener.try_sync_wake_up()
    status: list[int] = []

    def reap() -> None:
        # The zombie must be reaped: the filter (and so the listener's POLLHUP) is released only then.
        status.append(launched.proc.wait())

    reaper = threading.Thread(target=reap, name="mqsentry-reaper", daemon=True)
    reaper.start()
    plat = None
    try:
        first = None if kernel is not None or stats else _first_served(listener)
        if first is not None or kernel is not None or stats:
            k, nsmap = lazy.get()
            plat = build_platform(k, listener, use_fuse, mounts, nsmap.sweep, nsmap)
            mounts = None  # the platform closes it now
            plat.ns_of = nsmap.lookup
            plat.on_process_exit.append(lambda _tgid: nsmap.sweep())
            plat.serve(first)
    except BaseException:
        if plat is not None:
            plat.kill_all()
        launched.proc.kill()
        raise
    finally:
        reaper.join()
        if stats and plat is not None:
            print(f"mqsentry: {plat.stats}", file=sys.stderr)
        if plat is not None and plat.kernel.internal_errors:
            # A sentry bug the program saw as an errno: never let the run look clean.
            print(f"mqsentry: {plat.kernel.internal_errors} sentry internal error(s); latest: "
                  f"{plat.kernel.internal_error_log[-1] if plat.kernel.internal_error_log else '?'}", file=sys.stderr)
        if plat is not None:
            plat.close()
        else:
            listener.close()
        if proc is not None:
            proc.close()
        if mounts is not None:
            mounts.close()
        nsmap_built = lazy.built()
        if nsmap_built is not None:
            nsmap_built.close()
    rc = status[0] if status else 0
    return 128 - rc if rc < 0 else rc


__all__ = ["build_platform", "run_program"]
