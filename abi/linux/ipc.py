"""SysV IPC common ABI: IPC_* flags and commands, ``struct ipc64_perm``.

Linux counterpart: include/uapi/linux/ipc.h, include/uapi/asm-generic/ipcbuf.h.
gVisor counterpart: pkg/abi/linux/ipc.go.
"""

from __future__ import annotations

from typing import Final

import construct as cs

from mqsentry.abi.linux.layout import Layout

IPC_PRIVATE: Final = 0

# msgflg / semflg / shmflg bits.
IPC_CREAT: Final = 0o1000
IPC_EXCL: Final = 0o2000
IPC_NOWAIT: Final = 0o4000

# Control commands.
IPC_RMID: Final = 0
IPC_SET: Final = 1
IPC_STAT: Final = 2
IPC_INFO: Final = 3

#: Version flag of the old multiplexed ABI. The native amd64/arm64 msgctl never strips it, so
#: ``cmd | IPC_64`` is simply an unknown command there (EINVAL).
IPC_64: Final = 0x100

#: Linux's IPCMNI (ipc/util.h): index space per IPC type; IDs are ``seq * IPCMNI + idx``.
IPCMNI: Final = 32768
IPCMNI_SHIFT: Final = 15
#: ``ipcid_to_seqx`` wraps the sequence number at ``INT_MAX >> IPCMNI_SHIFT``.
IPCMNI_SEQ_MAX: Final = 0x7FFFFFFF >> IPCMNI_SHIFT

IPC64_PERM_CON = cs.Struct(
    "key" / cs.Int32sl,
    "uid" / cs.Int32ul,
    "gid" / cs.Int32ul,
    "cuid" / cs.Int32ul,
    "cgid" / cs.Int32ul,
    "mode" / cs.Int32ul,  # __kernel_mode_t is 32 bits on amd64/arm64 (glibc spells it u16 + pad)
    "seq" / cs.Int16ul,
    cs.Padding(2),
    cs.Padding(4),
    "unused1" / cs.Int64ul,
    "unused2" / cs.Int64ul,
)
IPC64_PERM = Layout("ipc64_perm", IPC64_PERM_CON, 48)
