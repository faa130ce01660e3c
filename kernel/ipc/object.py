"""The common part of every SysV IPC object and Linux's permission checks on it.

Linux counterpart: ``struct kern_ipc_perm`` (include/linux/ipc.h), ``ipcperms`` and the ownership test
of ``ipcctl_obtain_check`` (ipc/util.c). gVisor counterpart: pkg/sentry/kernel/ipc/object.go
(``Object``, ``CheckPermissions``, ``CheckOwnership``) -- but with Linux's rules: the permission
class is chosen against the creator *or* the owner, and the whole requested flag is folded
(gVisor divergence D3, docs/gvisor-divergences.md).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mqsentry.abi.linux.capability import CAP_IPC_OWNER, CAP_SYS_ADMIN
from mqsentry.kernel.auth.user_namespace import ROOT_USER_NAMESPACE

if TYPE_CHECKING:
    from mqsentry.kernel.auth.credentials import Credentials
    from mqsentry.kernel.auth.user_namespace import UserNamespace

#: The permission bits an object keeps (S_IRWXUGO).
S_IRWXUGO = 0o777
#: ``ipcperms`` flags used by callers (S_IRUGO / S_IWUGO).
S_IRUGO = 0o444
S_IWUGO = 0o222


class Object:
    """One SysV IPC object's identity and permissions (``kern_ipc_perm``).

    Immutable after registration: ``key``, ``id``, ``seq``, ``cuid``, ``cgid``, ``mu``, ``user_ns``.
    Guarded by ``mu`` (the object lock) *and* written only with the owning registry's lock held:
    ``uid``, ``gid``, ``mode`` (IPC_SET) and ``deleted`` (IPC_RMID). Readers on hot paths read them
    without the registry lock, as Linux's RCU lookups do, and re-check ``deleted`` under ``mu``.
    Mechanisms (message queues, later semaphores and shared memory) subclass this.
    """

    __slots__ = ("key", "id", "seq", "cuid", "cgid", "uid", "gid", "mode", "deleted", "mu", "user_ns")

    def __init__(self, key: int, creds: Credentials, mode: int) -> None:
        self.key = key
        self.id = -1  # assigned by Registry.add_locked
        self.seq = 0
        # ipc_addid: creator and owner are the caller's effective ids.
        self.cuid = self.uid = creds.euid
        self.cgid = self.gid = creds.egid
        self.mode = mode & S_IRWXUGO
        self.deleted = False
        self.mu = threading.Lock()
        #: The user namespace owning the object's IPC namespace (``ns->user_ns``): where CAP_IPC_OWNER
        #: and CAP_SYS_ADMIN must be held (``ns_capable``). The registry sets it before publishing.
        self.user_ns: UserNamespace = ROOT_USER_NAMESPACE


def ipcperms(creds: Credentials, obj: Object, flag: int) -> bool:
    """Linux ``ipcperms``: True if ``creds`` may access ``obj`` as ``flag`` asks.

    ``flag`` is truncated to a C ``short`` as the kernel's parameter is; msgget passes the caller's
    whole msgflg, so its mode bits become requested permissions.
    """
    flag = ((flag & 0xFFFF) ^ 0x8000) - 0x8000
    requested = (flag >> 6) | (flag >> 3) | flag
    granted = obj.mode
    euid = creds.euid
    if euid == obj.cuid or euid == obj.uid:
        granted >>= 6
    elif creds.in_group(obj.cgid) or creds.in_group(obj.gid):
        granted >>= 3
    return not (requested & ~granted & 0o7) or creds.has_cap_in(CAP_IPC_OWNER, obj.user_ns)


def may_control(creds: Credentials, obj: Object) -> bool:
    """The IPC_SET / IPC_RMID test of ``ipcctl_obtain_check``: creator, owner or CAP_SYS_ADMIN in the
    namespace's owning user namespace."""
    euid = creds.euid
    return euid == obj.cuid or euid == obj.uid or creds.has_cap_in(CAP_SYS_ADMIN, obj.user_ns)
