"""The ``mqsentry`` command line: ``demo``, ``bench`` and plug-in subcommands (argparse subparsers).

Linux counterpart: none. gVisor counterpart: runsc's subcommand dispatcher (runsc/cli, runsc/cmd),
on a much smaller scale.

Subcommand modules are imported lazily so that ``mqsentry --help`` stays fast and a broken
subcommand cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

#: Modules that add a subcommand: ``add_parser(subparsers) -> parser`` and ``run(args) -> int``.
PLUGINS = ("mqsentry.tools.run", "mqsentry.tools.fuzz", "mqsentry.tools.stress", "mqsentry.tools.difftest",
           "mqsentry.tools.permmatrix")


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mqsentry", description="Linux SysV and POSIX message queues served by an "
                                "embedded Python sentry (a port of gVisor's IPC subsystem).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="a traced client/server exchange through raw syscalls",
                       description="Run a client/server exchange over SysV and POSIX message queues on an "
                       "embedded kernel and print an strace-like line per syscall.")
    d.add_argument("--arch", choices=("amd64", "arm64"), default="amd64", help="guest architecture (default amd64)")
    d.add_argument("--raw", action="store_true", help="print buffers as addresses instead of decoding them")
    d.add_argument("--only", choices=("sysv", "posix"), help="run only one part of the embedded exchange")
    d.add_argument("--embedded", action="store_true",
                   help="skip the real C programs and show only the embedded raw-syscall exchange")

    b = sub.add_parser("bench", help="measure the sentry against the host kernel",
                       description="Measure syscall costs of the sentry against the host kernel and print "
                       "a table with the performance targets.")
    b.add_argument("--quick", action="store_true", help="tiny iteration counts (seconds; for tests and CI)")
    b.add_argument("--repeat", type=int, default=None, help="repetitions per measurement (median reported)")
    b.add_argument("--profile", action="store_true",
                   help="instead of the benchmarks, run cProfile over the sentry's hot loops and print the "
                   "top entries")
    b.add_argument("--top", type=int, default=15, help="entries printed by --profile (default 15)")
    b.add_argument("--sort", default="tottime", choices=("tottime", "cumtime", "ncalls"),
                   help="--profile sort key (default tottime)")
    b.add_argument("--what", choices=("sysv", "posix", "all"), default="all", help="--profile: which loop")
    for modname in PLUGINS:
        try:
            mod = importlib.import_module(modname)
            mod.add_parser(sub).set_defaults(plugin=mod)
        except ImportError:
            continue  # that part of the project is not in this build
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mqsentry`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        return _dispatch(parser, args)
    except BrokenPipeError:
        # The reader went away (``mqsentry demo | head``): stop quietly, as Unix tools do. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    plugin = getattr(args, "plugin", None)
    if plugin is not None:
        return int(plugin.run(args))
    if args.command == "demo":
        from mqsentry.tools import demo

        status = 0
        if not args.embedded and args.only is None:
            from mqsentry.tools import realdemo

            reason = realdemo.unavailable_reason()
            if reason is None:
                status = realdemo.run()
            else:
                print(f"(real programs skipped: {reason})")
        return demo.run(arch=args.arch, structs=not args.raw, only=args.only) or status
    if args.command == "bench":
        from mqsentry.tools import bench

        if args.profile:
            return bench.profile(quick=args.quick, top=args.top, sort=args.sort, what=args.what)
        return bench.run(quick=args.quick, repeat=args.repeat)
    parser.print_help(sys.stdout)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
