"""The platform: serve real Linux processes' message-queue syscalls with the sentry.

Linux counterpart: none (a supervisor in user space over seccomp user notification, kernel/seccomp.c).
gVisor counterpart: pkg/sentry/platform (ptrace, KVM, systrap), which trap *every* syscall of a
sandboxed process; this platform traps only the ten message-queue syscalls (plus a few it observes to
keep credentials current) and lets the host kernel run the rest natively.

Modules: ``seccomp`` (ctypes ABI, BPF, listener), ``launch`` (helper-process launcher), ``memory``
(process_vm_readv/writev adapter), ``procfs`` (/proc status: creds, signal state), ``loop`` (the event
loop, dispatch, signals), ``parking`` (a greenlet per parked call), ``userns`` (host user namespaces
mirrored: ids, capabilities), ``pidns`` (pids in nested pid namespaces), ``run`` (``run_program``). The
command line (tools/run.py) and the per-call benchmark (tools/platform_bench.py) live in tools/.

Threads and locks: every served call runs on the loop's one OS thread (greenlets, see ``parking``);
the FUSE servers run on threads of their own. The loop has no lock of its own, and no lock is ever
held across a greenlet switch; kernel locks follow kernel/kernel.py's order.
"""

from __future__ import annotations


def available() -> str | None:
    """None if this host can run the platform, else the reason it cannot."""
    import platform as _stdplatform
    import sys

    if sys.platform != "linux" or _stdplatform.machine() != "x86_64":
        return "the platform needs x86_64 Linux"
    from mqsentry.kernel.platform import seccomp

    if seccomp.notif_sizes() is None:
        return "seccomp user notification is not available (SECCOMP_GET_NOTIF_SIZES failed)"
    return None
