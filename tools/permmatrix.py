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


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "permmatrix", help="compare message-queue permission checks of the sentry with the host kernel",
        description="Run every SysV/POSIX message-queue operation for every caller class (owner, "
        "creator-not-owner, group by primary gid, group by supplementary group, other), capability and "
        "representative mode on the sentry and on the host kernel, and report the mismatches.")
    p.add_argument("--sentry-only", action="store_true",
                   help="do not use the host kernel: check the sentry against the Linux model only")
    p.add_argument("--table", action="store_true", help="print every cell's result")
    return p


def run(args: argparse.Namespace) -> int:
    from mqsentry.testsuite.difftest.runner import native_reason
    from mqsentry.testsuite.permissions.matrix import expected, run_matrix

    native = not args.sentry_only
    if native:
        reason = native_reason()
        if reason:
            print(f"permmatrix: the native target is unavailable ({reason}); checking the sentry against "
                  "the Linux model only", file=sys.stderr)
            native = False
    start = time.monotonic()
    rep = run_matrix(native=native)
    if args.table:
        from mqsentry.testsuite.permissions.matrix import cells

        for c in cells():
            print(f"{c}  {expected(c)}")
    print(rep.summary())
    print(f"({time.monotonic() - start:.1f}s)")
    return 1 if rep.mismatches else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mqsentry")
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    return run(p.parse_args(["permmatrix", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
