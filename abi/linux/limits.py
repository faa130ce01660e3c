"""Resource limits ABI. Linux counterpart: include/uapi/asm-generic/resource.h. gVisor: pkg/abi/linux/limits.go."""

from __future__ import annotations

import construct as cs

from mqsentry.abi.linux.layout import Layout

RLIMIT_CPU = 0
RLIMIT_FSIZE = 1
RLIMIT_DATA = 2
RLIMIT_STACK = 3
RLIMIT_CORE = 4
RLIMIT_RSS = 5
RLIMIT_NPROC = 6
RLIMIT_NOFILE = 7
RLIMIT_MEMLOCK = 8
RLIMIT_AS = 9
RLIMIT_LOCKS = 10
RLIMIT_SIGPENDING = 11
RLIMIT_MSGQUEUE = 12
RLIMIT_NICE = 13
RLIMIT_RTPRIO = 14
RLIMIT_RTTIME = 15
RLIM_NLIMITS = 16

RLIM_INFINITY = 0xFFFF_FFFF_FFFF_FFFF

#: Linux's NR_OPEN / fs.nr_open default: the ceiling for RLIMIT_NOFILE.
NR_OPEN = 1024 * 1024
#: Default RLIMIT_NOFILE (soft, hard) of init.
DEFAULT_NOFILE = (1024, 4096)
#: Default RLIMIT_MSGQUEUE (MQ_BYTES_MAX), soft = hard.
DEFAULT_MSGQUEUE = 819200

RLIMIT64 = Layout("rlimit64", cs.Struct("cur" / cs.Int64ul, "max" / cs.Int64ul), 16)
