"""``mqsentry run``: run a real x86_64 program with its message-queue syscalls served by the sentry.

Linux counterpart: none. gVisor counterpart: ``runsc do``. The work is in kernel/platform/run.py; this
module only plugs it into the CLI (``add_parser(subparsers)`` and ``run(args)``).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    from mqsentry.kernel.platform.run import add_arguments

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
    from mqsentry.kernel.platform.run import run_from_args

    if args.trace:
        import sys

        from mqsentry.boot import Kernel
        from mqsentry.tools.strace import Strace

        k = Kernel(arch="amd64")
        Strace(sys.stderr).install(k)
        args.kernel = k
    return run_from_args(args)
