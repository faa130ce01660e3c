"""POSIX message-queue ABI: limits, notification cookie values, ``struct mq_attr``.

Linux counterpart: include/uapi/linux/mqueue.h, include/linux/ipc_namespace.h (DFLT_*/HARD_* limits),
ipc/mqueue.c. gVisor counterpart: pkg/abi/linux/mqueue.go.
"""

from __future__ import annotations

from typing import Final

import construct as cs

from mqsentry.abi.linux.layout import Layout

MQ_PRIO_MAX: Final = 32768
MQ_BYTES_MAX: Final = 819200  # default RLIMIT_MSGQUEUE

# Per-namespace sysctl defaults and bounds (fs.mqueue.*).
DFLT_QUEUESMAX: Final = 256
MIN_MSGMAX: Final = 1
DFLT_MSG: Final = 10
DFLT_MSGMAX: Final = 10
HARD_MSGMAX: Final = 65536
MIN_MSGSIZEMAX: Final = 128
DFLT_MSGSIZE: Final = 8192
DFLT_MSGSIZEMAX: Final = 8192
HARD_MSGSIZEMAX: Final = 16 * 1024 * 1024
HARD_QUEUESMAX: Final = 1024

#: Longest queue name (NAME_MAX).
NAME_MAX: Final = 255

# SIGEV_THREAD cookie protocol (the last byte of the 32-byte cookie).
NOTIFY_NONE: Final = 0
NOTIFY_WOKENUP: Final = 1
NOTIFY_REMOVED: Final = 2
NOTIFY_COOKIE_LEN: Final = 32

#: The mqueue filesystem's statfs magic.
MQUEUE_MAGIC: Final = 0x19800202

#: Sizes Linux uses in the RLIMIT_MSGQUEUE cost (amd64 and arm64): ``struct msg_msg`` and
#: ``struct posix_msg_tree_node``.
SIZEOF_MSG_MSG: Final = 48
SIZEOF_POSIX_MSG_TREE_NODE: Final = 48

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
