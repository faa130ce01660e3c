"""``mqsentry permmatrix``: the message-queue permission matrix, sentry against host kernel.

Linux counterpart: ipc/util.c ``ipcperms``, ipc/msg.c ``msgctl_down``, ipc/mqueue.c + fs/namei.c
permission checks. gVisor counterpart: none (see testsuite/permissions/matrix.py for the design).
Every operation x caller class x capability x mode runs on the sentry and, where the host can express
it, on the host kernel; CAP_SYS_RESOURCE cells run on the sentry only against the Linux model.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict

from mqsentry.tools.cliargs import Progress, add_json_argument, require_test_extra, text_out, write_json


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "permmatrix", help="compare message-queue permission checks of the sentry with the host kernel",
        description="Run every SysV/POSIX message-queue operation for every caller class (owner, "
        "creator-not-owner, group by primary gid, group by supplementary group, other), capability and "
        "representative mode on the sentry and on the host kernel, and report the mismatches.")
    p.add_argument("--sentry-only", action="store_true",
                   help="do not use the host kernel: check the sentry against the Linux model only")
    p.add_argument("--table", action="store_true", help="print every cell's result")
    p.add_argument("--quiet", action="store_true", help="no progress lines on standard error")
    add_json_argument(p)
    return p


def run(args: argparse.Namespace) -> int:
    # The matrix lives in the test suite (it is also a test); it needs nothing of the test extra, but
    # say so plainly should a trimmed installation lack it.
    require_test_extra("permmatrix", "mqsentry.testsuite.permissions.matrix")
    from mqsentry.testsuite.difftest.runner import native_reason
    from mqsentry.testsuite.permissions.matrix import cells, expected, run_matrix

    out = text_out(args)
    native = not args.sentry_only
    reason = native_reason() if native else None
    if reason:
        print(f"permmatrix: the native target is unavailable ({reason}); checking the sentry against "
              "the Linux model only", file=sys.stderr)
        native = False
    start = time.monotonic()
    progress = Progress("permmatrix", every=0.0 if args.quiet else 5.0)
    rep = run_matrix(native=native, progress=lambda what: progress.tick(lambda: what))
    if args.table:
        for c in cells():
            print(f"{c}  {expected(c)}", file=out)
    print(rep.summary(), file=out)
    seconds = time.monotonic() - start
    print(f"({seconds:.1f}s)", file=out)
    status = 1 if rep.mismatches else 0
    write_json(args, "permmatrix", {
        "native": rep.native, "native_unavailable": reason or None, "cells": rep.cells, "compared": rep.compared,
        "sentry_only": rep.sentry_only, "seconds": round(seconds, 3),
        "mismatches": [{"cell": asdict(c), "sentry": s, "linux": h} for c, s, h in rep.mismatches],
        "model_errors": [{"cell": asdict(c), "host": h, "model": m} for c, h, m in rep.model_errors],
    }, status)
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mqsentry")
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    return run(p.parse_args(["permmatrix", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
