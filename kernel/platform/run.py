"""``mqsentry run PROGRAM ARGS...``: run a real program with its message-queue syscalls served.

Linux counterpart: none. gVisor counterpart: ``runsc do`` (run a command in a sandbox), here for one
subsystem only.

Usage for testing without the CLI: ``python -m mqsentry.kernel.platform.run [--sysctl k=v]... -- PROGRAM ARGS``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mqsentry.abi.linux.errno import errno_name
from mqsentry.boot import Kernel
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.platform import launch
from mqsentry.kernel.platform.loop import OBSERVED, SERVED, Platform
from mqsentry.kernel.platform.seccomp import Listener


def parse_sysctl(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--sysctl wants NAME=VALUE, got {text!r}")
    try:
        return name.strip(), int(value, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sysctl {name}: {value!r} is not an integer") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sysctl", action="append", type=parse_sysctl, default=[], metavar="NAME=VALUE",
                   help="set an IPC sysctl of the sentry, e.g. kernel.msgmax=4096 or fs.mqueue.msg_max=20")
    p.add_argument("--no-fuse", action="store_true", help="back mq descriptors with sockets, not FUSE files")
    p.add_argument("--no-sync", action="store_true", help="do not set SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP")
    p.add_argument("--stats", action="store_true", help="print served/parked/interrupted counts at exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log platform decisions to stderr")
    p.add_argument("program", help="the program to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")


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
    launched = launch.spawn(argv, list(SERVED), list(OBSERVED), **popen_kw)
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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mqsentry.kernel.platform.run")
    add_arguments(p)
    args = p.parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    from mqsentry.kernel import platform as plat_pkg

    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="mqsentry: %(message)s")
    reason = plat_pkg.available()
    if reason is not None:
        print(f"mqsentry run: {reason}", file=sys.stderr)
        return 125
    argv = [args.program, *args.args]
    if argv and argv[0] == "--":
        argv = argv[1:]
    try:
        return run_program(argv, args.sysctl, use_fuse=not args.no_fuse, sync=not args.no_sync,
                           stats=args.stats, kernel=getattr(args, "kernel", None))
    except OSError as e:
        print(f"mqsentry run: {e}", file=sys.stderr)
        return 125
    except Exception as e:  # a bad sysctl name or value
        print(f"mqsentry run: {e}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
