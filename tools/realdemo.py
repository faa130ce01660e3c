"""The real-program half of ``mqsentry demo``: a C client/server pair, as separate processes, with their
message-queue syscalls served by the sentry through the seccomp platform (``mqsentry run``).

Linux counterpart: none. gVisor counterpart: running a workload under ``runsc`` with ``--strace``.
The pair (tools/programs/clientserver.c) is compiled with the system C compiler into a temporary
directory; each served call is printed strace-like as the sentry answers it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import TextIO

PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs", "clientserver.c")


def unavailable_reason() -> str | None:
    """Why real programs cannot run under the sentry here, or None."""
    from mqsentry.kernel import platform

    reason = platform.available()
    if reason is not None:
        return reason
    if shutil.which("cc") is None:
        return "no C compiler (cc) to build the demo programs"
    if not os.path.exists(PROGRAM):
        return f"{PROGRAM} is missing from this installation"
    return None


def run(out: TextIO | None = None) -> int:
    """Run the SysV and the POSIX client/server pair under the sentry; 0 when both succeed."""
    from mqsentry.boot import Kernel
    from mqsentry.kernel.platform.run import run_program
    from mqsentry.tools.strace import Strace

    out = out or sys.stdout
    with tempfile.TemporaryDirectory(prefix="mqsentry-demo-") as tmp:
        exe = os.path.join(tmp, "clientserver")
        cc = subprocess.run(["cc", "-O2", "-o", exe, PROGRAM], capture_output=True, text=True)
        if cc.returncode != 0:
            print(f"(cc failed: {cc.stderr.strip()})", file=out)
            return 1
        status = 0
        for kind in ("sysv", "posix"):
            print(f"== real processes: {kind} server and client under `mqsentry run` ==", file=out, flush=True)
            k = Kernel(arch="amd64")
            Strace(out, structs=True).install(k)
            argv = ["sh", "-c", f'"$0" {kind}-server & "$0" {kind}-client; wait', exe]
            rc = run_program(argv, kernel=k, stdout=out if out is not sys.stdout else None)
            out.flush()
            status = status or rc
        return status
