"""The ``mqsentry`` command line: ``demo``, ``bench`` and the subcommand modules (argparse subparsers).

Linux counterpart: none. gVisor counterpart: runsc's subcommand dispatcher (runsc/cli, runsc/cmd),
on a much smaller scale.

Every subcommand module is imported here, statically: a module that fails to import is an error
when the command starts, never a subcommand that silently goes missing. The modules keep their own
heavy or optional imports (hypothesis, the test suite, the platform) inside ``run``, so that
``mqsentry --help`` stays fast and a missing test extra is reported by the one subcommand that
needs it (``pip install 'mqsentry[test]'``, exit status 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mqsentry import __version__
from mqsentry.tools import bench, conform, demo, difftest, emulate, fuzz, permmatrix, realdemo, stress
from mqsentry.tools import run as run_cmd
from mqsentry.tools.cliargs import MissingExtra, add_json_argument, check_json_path, positive_int

#: Modules that add a subcommand: ``add_parser(subparsers) -> parser`` and ``run(args) -> int``.
SUBCOMMANDS = (run_cmd, fuzz, stress, difftest, permmatrix, emulate, conform)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mqsentry", description="Linux SysV and POSIX message queues served by an "
                                "embedded Python sentry (a port of gVisor's IPC subsystem).")
    p.add_argument("--version", action="version", version=f"mqsentry {__version__}")
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
    b.add_argument("--repeat", type=positive_int, default=None,
                   help="repetitions per measurement, at least 1 (median reported)")
    b.add_argument("--profile", action="store_true",
                   help="instead of the benchmarks, run cProfile over the sentry's hot loops and print the "
                   "top entries")
    b.add_argument("--top", type=positive_int, default=15, help="entries printed by --profile (default 15)")
    b.add_argument("--sort", default="tottime", choices=("tottime", "cumtime", "ncalls"),
                   help="--profile sort key (default tottime)")
    b.add_argument("--what", choices=("sysv", "posix", "all"), default="all", help="--profile: which loop")
    add_json_argument(b)
    for mod in SUBCOMMANDS:
        mod.add_parser(sub).set_defaults(plugin=mod)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mqsentry`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command is not None:
        # Each subparser validated its own values; cross-argument checks and an unwritable --json path
        # are usage errors too, found before a long run rather than after it.
        sub_parser = _subparser(parser, args.command)
        check_json_path(sub_parser, args)
        validate = getattr(getattr(args, "plugin", None), "validate", None)
        if validate is not None:
            validate(sub_parser, args)
    try:
        return _dispatch(parser, args)
    except MissingExtra as e:
        print(f"mqsentry: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``mqsentry demo | head``): stop quietly, as Unix tools do. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps the subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    return parser


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    plugin = getattr(args, "plugin", None)
    if plugin is not None:
        return int(plugin.run(args))
    if args.command == "demo":
        status = 0
        if not args.embedded and args.only is None:
            reason = realdemo.unavailable_reason()
            if reason is None:
                status = realdemo.run()
            else:
                print(f"(real programs skipped: {reason})")
        return demo.run(arch=args.arch, structs=not args.raw, only=args.only) or status
    if args.command == "bench":
        if args.profile:
            return bench.profile(quick=args.quick, top=args.top, sort=args.sort, what=args.what)
        return bench.run_cli(args)
    parser.print_help(sys.stdout)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
