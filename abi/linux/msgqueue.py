"""SysV message-queue ABI: MSG_* flags and commands, limits, msqid64_ds, msginfo, the msgbuf header.

Linux counterpart: include/uapi/linux/msg.h, include/uapi/asm-generic/msgbuf.h.
gVisor counterpart: pkg/abi/linux/msgqueue.go.
"""

from __future__ import annotations

import struct
from typing import Final

import construct as cs

from mqsentry.abi.linux.ipc import IPC64_PERM_CON
from mqsentry.abi.linux.layout import Layout

# msgctl commands beyond IPC_*.
MSG_STAT: Final = 11
MSG_INFO: Final = 12
MSG_STAT_ANY: Final = 13

# msgrcv flags.
MSG_NOERROR: Final = 0o10000
MSG_EXCEPT: Final = 0o20000
MSG_COPY: Final = 0o40000

# Defaults and constants (include/uapi/linux/msg.h).
MSGMNI: Final = 32000  # default kernel.msgmni
MSGMAX: Final = 8192  # default kernel.msgmax
MSGMNB: Final = 16384  # default kernel.msgmnb (and a new queue's msg_qbytes)
MSGPOOL = MSGMNI * MSGMNB // 1024  # 512000, reported by IPC_INFO
MSGTQL = MSGMNB  # 16384
MSGMAP = MSGMNB  # 16384
MSGSSZ: Final = 16
MSGSEG: Final = 0xFFFF  # (MSGPOOL * 1024) / MSGSSZ clamped to unsigned short

MSQID64_DS = Layout(
    "msqid64_ds",
    cs.Struct(
        "perm" / IPC64_PERM_CON,
        "stime" / cs.Int64sl,
        "rtime" / cs.Int64sl,
        "ctime" / cs.Int64sl,
        "cbytes" / cs.Int64ul,
        "qnum" / cs.Int64ul,
        "qbytes" / cs.Int64ul,
        "lspid" / cs.Int32sl,
        "lrpid" / cs.Int32sl,
        "unused4" / cs.Int64ul,
        "unused5" / cs.Int64ul,
    ),
    120,
)

MSGINFO = Layout(
    "msginfo",
    cs.Struct(
        "msgpool" / cs.Int32sl,
        "msgmap" / cs.Int32sl,
        "msgmax" / cs.Int32sl,
        "msgmnb" / cs.Int32sl,
        "msgmni" / cs.Int32sl,
        "msgssz" / cs.Int32sl,
        "msgtql" / cs.Int32sl,
        "msgseg" / cs.Int16ul,
        cs.Padding(2),  # C sizeof is 32; Linux copies the whole struct out
    ),
    32,
)

#: ``struct msgbuf`` header: ``long mtype`` followed by the text.
MSGBUF_HDR = Layout("msgbuf", cs.Struct("mtype" / cs.Int64sl), 8)
#: Hot-path codec for the mtype word (derived from MSGBUF_HDR, not declared again).
MTYPE: struct.Struct = MSGBUF_HDR.codec
