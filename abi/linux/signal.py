"""Signals ABI: numbers, sigaction flags, kernel ``struct sigaction``, ``siginfo_t``, ``sigevent``.

Linux counterpart: include/uapi/asm-generic/signal.h, arch/x86/include/uapi/asm/signal.h,
include/uapi/asm-generic/siginfo.h, include/uapi/asm-generic/signal-defs.h.
gVisor counterpart: pkg/abi/linux/signal.go.

amd64 and arm64 share every value here (arm64 also defines SA_RESTORER).
"""

from __future__ import annotations

import construct as cs

from mqsentry.abi.linux.layout import Layout

SIGHUP = 1
SIGINT = 2
SIGQUIT = 3
SIGILL = 4
SIGTRAP = 5
SIGABRT = 6
SIGBUS = 7
SIGFPE = 8
SIGKILL = 9
SIGUSR1 = 10
SIGSEGV = 11
SIGUSR2 = 12
SIGPIPE = 13
SIGALRM = 14
SIGTERM = 15
SIGSTKFLT = 16
SIGCHLD = 17
SIGCONT = 18
SIGSTOP = 19
SIGTSTP = 20
SIGTTIN = 21
SIGTTOU = 22
SIGURG = 23
SIGXCPU = 24
SIGXFSZ = 25
SIGVTALRM = 26
SIGPROF = 27
SIGWINCH = 28
SIGIO = 29
SIGPWR = 30
SIGSYS = 31
SIGRTMIN = 32  # the kernel's; glibc reserves 32-34 and reports SIGRTMIN as 34
SIGRTMAX = 64
NSIG = 64  # _NSIG: valid signals are 1.._NSIG

SIGNAL_NAMES: dict[int, str] = {v: k for k, v in dict(globals()).items()
                                if k.startswith("SIG") and not k.startswith("SIGRT") and isinstance(v, int)
                                and k not in ("SIGNAL_NAMES",)}

SIG_DFL = 0
SIG_IGN = 1

SIG_BLOCK = 0
SIG_UNBLOCK = 1
SIG_SETMASK = 2

SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_UNSUPPORTED = 0x00000400
SA_EXPOSE_TAGBITS = 0x00000800
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

# si_code values.
SI_USER = 0
SI_KERNEL = 0x80
SI_QUEUE = -1
SI_TIMER = -2
SI_MESGQ = -3
SI_ASYNCIO = -4
SI_SIGIO = -5
SI_TKILL = -6

# sigev_notify values.
SIGEV_SIGNAL = 0
SIGEV_NONE = 1
SIGEV_THREAD = 2
SIGEV_THREAD_ID = 4

#: Size of ``sigset_t`` as the kernel's rt_sig* calls require it (``sigsetsize`` argument).
SIGSET_SIZE = 8


def sigmask(sig: int) -> int:
    """The bit of signal ``sig`` in a ``sigset_t``."""
    return 1 << (sig - 1)


#: Signals that can never be caught, blocked or ignored.
UNBLOCKABLE = sigmask(SIGKILL) | sigmask(SIGSTOP)
#: Default action "ignore" (SIG_KERNEL_IGNORE_MASK).
DEFAULT_IGNORE = sigmask(SIGCONT) | sigmask(SIGCHLD) | sigmask(SIGWINCH) | sigmask(SIGURG)
#: Default action "stop" (SIG_KERNEL_STOP_MASK).
DEFAULT_STOP = sigmask(SIGSTOP) | sigmask(SIGTSTP) | sigmask(SIGTTIN) | sigmask(SIGTTOU)
#: Default action "core dump" (SIG_KERNEL_COREDUMP_MASK); treated as termination here.
DEFAULT_COREDUMP = (sigmask(SIGQUIT) | sigmask(SIGILL) | sigmask(SIGTRAP) | sigmask(SIGABRT) | sigmask(SIGFPE)
                    | sigmask(SIGSEGV) | sigmask(SIGBUS) | sigmask(SIGSYS) | sigmask(SIGXCPU) | sigmask(SIGXFSZ))

#: The kernel's ``struct sigaction`` as rt_sigaction reads and writes it (32 bytes on amd64/arm64).
SIGACTION = Layout(
    "sigaction",
    cs.Struct("handler" / cs.Int64ul, "flags" / cs.Int64ul, "restorer" / cs.Int64ul, "mask" / cs.Int64ul),
    32,
)

#: ``siginfo_t`` (128 bytes). The union starts at offset 16; for kill, rt and SI_MESGQ signals it
#: holds ``_pid``, ``_uid`` and ``_sigval`` at 16, 20 and 24 (for SIGCHLD ``_status`` overlays the low
#: half of ``value``).
SIGINFO = Layout(
    "siginfo",
    cs.Struct(
        "signo" / cs.Int32sl,
        "errno" / cs.Int32sl,
        "code" / cs.Int32sl,
        cs.Padding(4),
        "pid" / cs.Int32sl,
        "uid" / cs.Int32ul,
        "value" / cs.Int64ul,
        cs.Padding(96),
    ),
    128,
)

#: ``struct sigevent`` (64 bytes). For SIGEV_THREAD the C union holds the function pointer and the
#: attribute pointer at 16 and 24; glibc's mq_notify instead passes a netlink fd in ``signo`` and a
#: pointer to a 32-byte cookie in ``value``. ``tid`` is for SIGEV_THREAD_ID.
SIGEVENT = Layout(
    "sigevent",
    cs.Struct(
        "value" / cs.Int64ul,
        "signo" / cs.Int32sl,
        "notify" / cs.Int32sl,
        "tid" / cs.Int32sl,
        cs.Padding(4),
        "attribute" / cs.Int64ul,
        cs.Padding(32),
    ),
    64,
)
