"""Run a real program to completion with its message-queue syscalls served (the library half of
``mqsentry run``; the command line lives in tools/run.py).

Linux counterpart: none. gVisor counterpart: ``runsc do`` (run a command in a sandbox), here for one
subsystem only.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mqsentry.abi.linux.errno import errno_name
from mqsentry.boot import Kernel
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.platform import launch
from mqsentry.kernel.platform.loop import OBSERVED, OBSERVED_I386, SERVED, SERVED_I386, Platform
from mqsentry.kernel.platform.seccomp import Listener


def build_platform(kernel: Kernel, listener: Listener, use_fuse: bool = True) -> Platform:
    """The platform with every available backend attached (mq descriptors once the POSIX engine exists)."""
    plat = Platform(kernel, listener)
    try:
        from mqsentry.kernel.platform import mqfd
    except ImportError:  # pragma: no cover - the POSIX part is optional
        return plat
    mqfd.attach(plat, use_fuse=use_fuse)
    return plat


def run_program(argv: list[str], sysctls: Sequence[tuple[str, int]] = (), use_fuse: bool = True,
                sync: bool = True, stats: bool = False, kernel: Kernel | None = None,
                listener_factory: Callable[[int], Listener] = Listener, **popen_kw: Any) -> int:
    """Run ``argv`` to completion under a fresh sentry; returns its exit status as a shell does
    (128 + signal number when it was killed). ``popen_kw`` (stdin, stdout, stderr, cwd, env) go to
    the program's launch. ``listener_factory`` wraps the listener fd (tests substitute a listener
    that injects faults)."""
    k = kernel if kernel is not None else Kernel(arch="amd64")
    for name, value in sysctls:
        try:
            k.sysctl_write(name, value)
        except KeyError:
            raise ValueError(f"unknown sysctl {name!r}") from None
        except SysError as e:
            raise ValueError(f"sysctl {name}={value}: {errno_name(e.errno)} (out of range)") from None
    launched = launch.spawn(argv, list(SERVED), list(OBSERVED), notify32=SERVED_I386, observe32=OBSERVED_I386,
                            **popen_kw)
    listener = listener_factory(launched.listener_fd)
    if sync:
        listener.try_sync_wake_up()
    plat = build_platform(k, listener, use_fuse)
    status: list[int] = []

    def reap() -> None:
        # The zombie must be reaped: the filter (and so the listener's POLLHUP) is released only then.
        status.append(launched.proc.wait())

    reaper = threading.Thread(target=reap, name="mqsentry-reaper", daemon=True)
    reaper.start()
    try:
        plat.serve()
    except BaseException:
        plat.kill_all()
        launched.proc.kill()
        raise
    finally:
        reaper.join()
        if stats:
            print(f"mqsentry: {plat.stats}", file=sys.stderr)
        plat.close()
    rc = status[0] if status else 0
    return 128 - rc if rc < 0 else rc


__all__ = ["build_platform", "run_program"]
