"""POSIX message-queue ABI: limits, notification cookie values, ``struct mq_attr``.

Linux counterpart: include/uapi/linux/mqueue.h, include/linux/ipc_namespace.h (DFLT_*/HARD_* limits),
ipc/mqueue.c. gVisor counterpart: pkg/abi/linux/mqueue.go.
"""

from __future__ import annotations

import construct as cs

from mqsentry.abi.linux.layout import Layout

MQ_PRIO_MAX = 32768
MQ_BYTES_MAX = 819200  # default RLIMIT_MSGQUEUE

# Per-namespace sysctl defaults and bounds (fs.mqueue.*).
DFLT_QUEUESMAX = 256
MIN_MSGMAX = 1
DFLT_MSG = 10
DFLT_MSGMAX = 10
HARD_MSGMAX = 65536
MIN_MSGSIZEMAX = 128
DFLT_MSGSIZE = 8192
DFLT_MSGSIZEMAX = 8192
HARD_MSGSIZEMAX = 16 * 1024 * 1024
HARD_QUEUESMAX = 1024

#: Longest queue name (NAME_MAX).
NAME_MAX = 255

# SIGEV_THREAD cookie protocol (the last byte of the 32-byte cookie).
NOTIFY_NONE = 0
NOTIFY_WOKENUP = 1
NOTIFY_REMOVED = 2
NOTIFY_COOKIE_LEN = 32

#: The mqueue filesystem's statfs magic.
MQUEUE_MAGIC = 0x19800202

#: Sizes Linux uses in the RLIMIT_MSGQUEUE cost (amd64 and arm64): ``struct msg_msg`` and
#: ``struct posix_msg_tree_node``.
SIZEOF_MSG_MSG = 48
SIZEOF_POSIX_MSG_TREE_NODE = 48

MQ_ATTR = Layout(
    "mq_attr",
    cs.Struct(
        "flags" / cs.Int64sl,
        "maxmsg" / cs.Int64sl,
        "msgsize" / cs.Int64sl,
        "curmsgs" / cs.Int64sl,
        cs.Padding(32),  # __reserved[4]: ignored on input, zero on output
    ),
    64,
)
