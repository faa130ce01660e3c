"""``mqsentry difftest``: generated message-queue sequences run on the sentry and the host kernel.

Linux counterpart: none (the host kernel is the oracle). gVisor counterpart: none; see
testsuite/difftest for the design. Each example is a hypothesis-generated sequence of SysV and POSIX
operations by several actors, run in lockstep on a fresh sentry and a fresh native target; the first
divergence is shrunk by hypothesis to a minimal sequence and printed as a regression test.
"""

from __future__ import annotations

import argparse
import sys
import time

from mqsentry.tools.cliargs import (
    Progress,
    add_json_argument,
    nonnegative_int,
    positive_int,
    require_test_extra,
    text_out,
    write_json,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "difftest", help="compare the sentry with the host kernel on generated sequences",
        description="Run hypothesis-generated sequences of SysV and POSIX message-queue operations by "
        "several actors on the sentry and on the host kernel (needs root on x86_64 Linux), compare every "
        "result, and print the first divergence, shrunk, as a regression test.")
    p.add_argument("--examples", type=positive_int, default=1000, help="sequences to run (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    p.add_argument("--min-steps", type=positive_int, default=5, help="shortest sequence (default 5)")
    p.add_argument("--max-steps", type=positive_int, default=30, help="longest sequence (default 30)")
    p.add_argument("--no-shrink", action="store_true", help="report the first divergence as found")
    p.add_argument("--progress", type=nonnegative_int, default=0, metavar="N",
                   help="print a progress line every N sequences (default: one every few seconds)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on standard error")
    p.add_argument("--blocking", action="store_true",
                   help="blocking sequences: parked senders and receivers (threads on the host), far, "
                   "invalid and expired deadlines, signals with and without SA_RESTART, IPC_RMID and "
                   "mq_unlink while blocked, pipelined sends, notifications")
    add_json_argument(p)
    return p


def validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks across arguments (each value alone was checked by its ``type``)."""
    if args.min_steps > args.max_steps:
        parser.error(f"--min-steps {args.min_steps} is larger than --max-steps {args.max_steps}")


def run(args: argparse.Namespace) -> int:
    require_test_extra("difftest", "hypothesis")
    from hypothesis import HealthCheck, Phase, given, seed, settings

    from mqsentry.testsuite.difftest.runner import Divergence, native_reason, run_pair
    from mqsentry.testsuite.difftest.strategies import blocking_cases, cases

    out = text_out(args)
    reason = native_reason()
    if reason:
        print(f"difftest: the native target is unavailable here: {reason}", file=sys.stderr)
        write_json(args, "difftest", {"native_unavailable": reason}, 2)
        return 2
    phases = [Phase.generate] if args.no_shrink else [Phase.generate, Phase.shrink]
    counts = {"ran": 0, "steps": 0}
    start = time.monotonic()
    progress = Progress("difftest", every=0.0 if args.quiet or args.progress else 5.0)

    @settings(max_examples=args.examples, deadline=None, database=None, phases=phases, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given((blocking_cases if args.blocking else cases)(args.min_steps, args.max_steps))
    def check(case) -> None:  # type: ignore[no-untyped-def]
        counts["ran"] += 1
        counts["steps"] += len(case.steps)
        if args.progress and not args.quiet and counts["ran"] % args.progress == 0:
            print(f"difftest: {counts['ran']} sequences, {counts['steps']} steps, "
                  f"{time.monotonic() - start:.0f}s", file=sys.stderr, flush=True)
        progress.tick(lambda: f"{counts['ran']} sequences, {counts['steps']} steps")
        run_pair(case)

    if args.seed is not None:
        check = seed(args.seed)(check)
    try:
        check()
    except Divergence as d:
        report = d.report()
        print(f"difftest: DIVERGENCE after {counts['ran']} sequence runs (including shrinking)\n", file=out)
        print(report, file=out)
        write_json(args, "difftest", {"sequences": counts["ran"], "steps": counts["steps"], "divergences": 1,
                                      "report": report, "seconds": round(time.monotonic() - start, 3)}, 1)
        return 1
    print(f"difftest: {counts['ran']} {'blocking ' if args.blocking else ''}sequences ({counts['steps']} steps), "
          f"0 divergences, 0 internal errors, {time.monotonic() - start:.0f}s", file=out)
    write_json(args, "difftest", {"sequences": counts["ran"], "steps": counts["steps"], "divergences": 0,
                                  "internal_errors": 0, "blocking": args.blocking, "seed": args.seed,
                                  "seconds": round(time.monotonic() - start, 3)}, 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mqsentry")
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    args = p.parse_args(["difftest", *(argv if argv is not None else sys.argv[1:])])
    validate(p, args)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
