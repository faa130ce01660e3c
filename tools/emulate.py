"""``mqsentry emulate``: run a Linux program of another (or the same) architecture under Qiling, with its
message-queue calls served by the sentry.

Linux counterpart: none (binfmt_misc + qemu-user is the nearest: a foreign binary run by an emulator).
gVisor counterpart: none. The hosting is in tools/hosts/qiling.py; this module makes the rootfs,
starts Qiling and reports. Needs ``pip install 'mqsentry[qiling]'``.

Qiling resolves /proc/self/exe (which static glibc reads at start-up) inside its rootfs, so a program
run without ``--rootfs`` is copied into a temporary rootfs of its own. A dynamic program needs a
rootfs holding its loader and libraries (``--rootfs DIR``, with PROGRAM inside DIR).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

#: Exit status when the guest was stopped because a served call would sleep forever.
HANG_STATUS = 124
#: Exit status when Qiling is not installed or cannot run the program.
UNAVAILABLE_STATUS = 2
#: Exit status when the sentry counted internal errors (a bug in the sentry; EX_SOFTWARE of sysexits.h).
INTERNAL_ERROR_STATUS = 70


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "emulate", help="run a Linux program under Qiling with its message-queue calls served by the sentry",
        description="Run PROGRAM (i386, arm EABI, mips o32 of either byte order, x86_64 or arm64 Linux) "
        "under the Qiling emulator, with msgget/msgsnd/msgrcv/msgctl, the mq_* calls and ipc(2)'s "
        "message-queue calls served by an embedded sentry. Needs pip install 'mqsentry[qiling]'. "
        "Qiling runs one host thread: a served call that would sleep with no deadline stops the "
        f"emulation (exit status {HANG_STATUS}).")
    p.add_argument("--rootfs", metavar="DIR",
                   help="the guest's root directory (needed by dynamic programs; PROGRAM should lie inside "
                   "it). Default: a temporary rootfs holding a copy of PROGRAM")
    p.add_argument("--stats", action="store_true", help="print the served calls per name to stderr at exit")
    p.add_argument("--qiling-log", action="store_true", help="let Qiling log every syscall (very verbose)")
    p.add_argument("program", metavar="PROGRAM", help="the program to run")
    p.add_argument("args", metavar="ARGS", nargs=argparse.REMAINDER, help="its arguments")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from qiling import Qiling
        from qiling.const import QL_VERBOSE
    except ImportError:
        print("mqsentry emulate needs Qiling: pip install 'mqsentry[qiling]'", file=sys.stderr)
        return UNAVAILABLE_STATUS
    from mqsentry.tools.hosts.qiling import GuestWouldHang, install

    if not os.path.isfile(args.program):
        print(f"mqsentry emulate: {args.program}: no such file", file=sys.stderr)
        return UNAVAILABLE_STATUS
    tmp = None
    if args.rootfs is None:
        tmp = tempfile.mkdtemp(prefix="mqsentry-rootfs-")
        program = os.path.join(tmp, os.path.basename(args.program))
        shutil.copy2(args.program, program)
        rootfs = tmp
    else:
        rootfs, program = args.rootfs, args.program
    try:
        verbose = QL_VERBOSE.DEFAULT if args.qiling_log else QL_VERBOSE.DISABLED
        try:
            ql = Qiling([program, *args.args], rootfs, verbose=verbose)
            host = install(ql)
        except Exception as e:  # Qiling rejects the file (format, architecture)
            print(f"mqsentry emulate: Qiling cannot run {args.program}: {e}", file=sys.stderr)
            return UNAVAILABLE_STATUS
        status = 0
        try:
            ql.run()
            status = int(getattr(ql.os, "exit_code", 0) or 0)
        except GuestWouldHang as e:
            print(f"mqsentry emulate: stopped: {e.args[0] if e.args else 'a call'} would sleep forever "
                  "(no other task in the emulation can wake it)", file=sys.stderr)
            status = HANG_STATUS
        if args.stats:
            print(f"mqsentry emulate: {host.arch}: served {host.calls}", file=sys.stderr)
        if host.kernel.internal_errors:
            # An internal error is a sentry bug: say so, and never let the run look clean.
            print(f"mqsentry emulate: {host.kernel.internal_errors} sentry internal error(s):", file=sys.stderr)
            for err in host.kernel.internal_error_log:
                print(f"mqsentry emulate:   {err}", file=sys.stderr)
            return status or INTERNAL_ERROR_STATUS
        return status
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
