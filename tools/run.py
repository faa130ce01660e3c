"""``mqsentry run``: run a real x86_64 program with its message-queue syscalls served by the sentry.

Linux counterpart: none. gVisor counterpart: ``runsc do``. The work is in kernel/platform/run.py
(``run_program``); this module is its command line: the subcommand (``add_parser(subparsers)`` and
``run(args)``) and a standalone entry, ``python -m mqsentry.tools.run [--sysctl k=v]... PROGRAM ARGS``,
which the platform tests use (it imports only what a run needs).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from mqsentry.kernel.platform.run import run_program


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help="run a real program with its message-queue syscalls served by the sentry",
        description="Run PROGRAM (and every process and thread it creates) with msgget/msgsnd/msgrcv/msgctl "
        "and mq_open/mq_unlink/mq_timedsend/mq_timedreceive/mq_notify/mq_getsetattr served by one sentry "
        "kernel (one IPC namespace); everything else runs on the host kernel. Needs x86_64 Linux with "
        "seccomp user notification.")
    add_arguments(p)
    p.add_argument("--trace", action="store_true",
                   help="print an strace-like line to stderr for every syscall the sentry serves")
    return p


def validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors before anything runs: every ``--sysctl`` must name a per-IPC-namespace sysctl the
    sentry has and give it a value inside Linux's bounds (``proc_dointvec_minmax``'s extra1/extra2)."""
    from mqsentry.kernel.ipc_sysctl import SYSCTLS

    for name, value in args.sysctl:
        spec = SYSCTLS.get(name)
        if spec is None:
            parser.error(f"--sysctl: unknown sysctl {name!r} (known: {', '.join(sorted(SYSCTLS))})")
        if not spec.lo <= value <= spec.hi:
            parser.error(f"--sysctl {name}={value}: out of range [{spec.lo}, {spec.hi}]")


def run(args: argparse.Namespace) -> int:
    if args.trace:
        import sys

        from mqsentry.boot import Kernel
        from mqsentry.tools.strace import Strace

        k = Kernel(arch="amd64")
        Strace(sys.stderr).install(k)
        args.kernel = k
    return run_from_args(args)


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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mqsentry.tools.run")
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
