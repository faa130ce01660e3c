"""Capabilities ABI: capability numbers and the capget/capset header and data structs.

Linux counterpart: include/uapi/linux/capability.h. gVisor counterpart: pkg/abi/linux/capability.go.
"""

from __future__ import annotations

import construct as cs

from mqsentry.abi.linux.layout import Layout

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_LINUX_IMMUTABLE = 9
CAP_NET_BIND_SERVICE = 10
CAP_NET_BROADCAST = 11
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_IPC_LOCK = 14
CAP_IPC_OWNER = 15
CAP_SYS_MODULE = 16
CAP_SYS_RAWIO = 17
CAP_SYS_CHROOT = 18
CAP_SYS_PTRACE = 19
CAP_SYS_PACCT = 20
CAP_SYS_ADMIN = 21
CAP_SYS_BOOT = 22
CAP_SYS_NICE = 23
CAP_SYS_RESOURCE = 24
CAP_SYS_TIME = 25
CAP_SYS_TTY_CONFIG = 26
CAP_MKNOD = 27
CAP_LEASE = 28
CAP_AUDIT_WRITE = 29
CAP_AUDIT_CONTROL = 30
CAP_SETFCAP = 31
CAP_MAC_OVERRIDE = 32
CAP_MAC_ADMIN = 33
CAP_SYSLOG = 34
CAP_WAKE_ALARM = 35
CAP_BLOCK_SUSPEND = 36
CAP_AUDIT_READ = 37
CAP_PERFMON = 38
CAP_BPF = 39
CAP_CHECKPOINT_RESTORE = 40
CAP_LAST_CAP = CAP_CHECKPOINT_RESTORE

#: Every capability this kernel knows, as a bit set.
ALL_CAPS = (1 << (CAP_LAST_CAP + 1)) - 1

CAP_NAMES: dict[int, str] = {v: k for k, v in dict(globals()).items() if k.startswith("CAP_") and k != "CAP_LAST_CAP"
                             and isinstance(v, int)}

_LINUX_CAPABILITY_VERSION_1 = 0x19980330
_LINUX_CAPABILITY_VERSION_2 = 0x20071026  # deprecated, accepted like v3
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
LINUX_CAPABILITY_VERSION_1 = _LINUX_CAPABILITY_VERSION_1
LINUX_CAPABILITY_VERSION_2 = _LINUX_CAPABILITY_VERSION_2
LINUX_CAPABILITY_VERSION_3 = _LINUX_CAPABILITY_VERSION_3

CAP_HEADER = Layout("__user_cap_header_struct", cs.Struct("version" / cs.Int32ul, "pid" / cs.Int32sl), 8)
CAP_DATA = Layout(
    "__user_cap_data_struct",
    cs.Struct("effective" / cs.Int32ul, "permitted" / cs.Int32ul, "inheritable" / cs.Int32ul),
    12,
)


def cap_bit(cap: int) -> int:
    """The bit of ``cap`` in a 64-bit capability set."""
    return 1 << cap
