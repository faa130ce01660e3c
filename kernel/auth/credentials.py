"""Task credentials: uids, gids, supplementary groups and capability sets.

Linux counterpart: ``struct cred`` (include/linux/cred.h), the setuid family in kernel/sys.c and
``cap_task_fix_setuid``/``cap_capset`` in security/commoncap.c. gVisor counterpart:
pkg/sentry/kernel/auth/credentials.go and pkg/sentry/kernel/task_identity.go.

Credentials are immutable values: a change builds a new object and the task swaps its reference, as
Linux's ``prepare_creds``/``commit_creds`` do. Every id is a *kernel* id (the id in the sentry's root
user namespace, see user_namespace.py); ``user_ns`` is the namespace the task sees ids in and holds
its capability sets in (``cred->user_ns``). In-process tasks live in the root namespace, where
"capable in the namespace's user namespace" is the same as "has the capability".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mqsentry.abi.linux.capability import (
    ALL_CAPS,
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH,
    CAP_FOWNER,
    CAP_FSETID,
    CAP_LINUX_IMMUTABLE,
    CAP_MAC_OVERRIDE,
    CAP_MKNOD,
)
from mqsentry.kernel.auth.user_namespace import NO_ID, ROOT_USER_NAMESPACE, UserNamespace

#: Capabilities that follow fsuid (CAP_FS_MASK in include/linux/capability.h).
CAP_FS_MASK = ((1 << CAP_CHOWN) | (1 << CAP_MKNOD) | (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH)
               | (1 << CAP_FOWNER) | (1 << CAP_FSETID) | (1 << CAP_LINUX_IMMUTABLE) | (1 << CAP_MAC_OVERRIDE))

#: NGROUPS_MAX.
NGROUPS_MAX = 65536


@dataclass(frozen=True, slots=True)
class Credentials:
    """One task's credentials (immutable)."""

    ruid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    rgid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: tuple[int, ...] = ()
    cap_permitted: int = ALL_CAPS
    cap_effective: int = ALL_CAPS
    cap_inheritable: int = 0
    cap_bounding: int = ALL_CAPS
    cap_ambient: int = 0
    keep_caps: bool = False
    #: The user namespace the ids are seen in and the capabilities held in (``cred->user_ns``).
    user_ns: UserNamespace = ROOT_USER_NAMESPACE

    @classmethod
    def for_user(cls, uid: int, gid: int, groups: tuple[int, ...] = (), caps: int | None = None) -> Credentials:
        """Credentials of a fresh process: capabilities as Linux gives them (full for uid 0, none
        otherwise) unless ``caps`` sets permitted = effective explicitly."""
        if caps is None:
            caps = ALL_CAPS if uid == 0 else 0
        # Sorted, as setgroups(2) stores them (groups_sort) and getgroups(2) returns them.
        return cls(uid, uid, uid, uid, gid, gid, gid, gid, tuple(sorted(groups)), caps, caps, 0, ALL_CAPS, 0)

    # -- queries -----------------------------------------------------------------------------------
    def has_cap(self, cap: int) -> bool:
        """``capable(cap)`` = ``ns_capable(&init_user_ns, cap)``: the capability is in the effective
        set of credentials of the root namespace; a task in a child namespace never has it."""
        return self.user_ns.parent is None and (self.cap_effective >> cap) & 1 == 1

    def has_cap_wrt_ids(self, cap: int, uid: int, gid: int) -> bool:
        """``capable_wrt_inode_uidgid``: the capability in the caller's own namespace, and the
        object's owner and group both mapped there (``privileged_wrt_inode_uidgid``)."""
        ns = self.user_ns
        if ns.parent is None:
            return (self.cap_effective >> cap) & 1 == 1
        return ((self.cap_effective >> cap) & 1 == 1 and ns.map_from_kuid(uid) != NO_ID
                and ns.map_from_kgid(gid) != NO_ID)

    def has_cap_in(self, cap: int, ns: UserNamespace) -> bool:
        """``ns_capable(ns, cap)`` (security/commoncap.c ``cap_capable``): the capability counts if
        the credentials live in ``ns`` or an ancestor of it -- in their own namespace as the effective
        set says, and the owner (euid) of a namespace on the path below has every capability there."""
        target: UserNamespace | None = ns
        mine = self.user_ns
        while target is not None:
            if target is mine:
                return (self.cap_effective >> cap) & 1 == 1
            parent = target.parent
            if parent is mine and target.owner == self.euid:
                return True
            target = parent
        return False

    def in_group(self, gid: int) -> bool:
        """``in_group_p``: fsgid or a supplementary group matches (Linux uses fsgid here)."""
        return gid == self.fsgid or gid in self.groups

    def in_egroup(self, gid: int) -> bool:
        """``in_egroup_p``: egid or a supplementary group matches."""
        return gid == self.egid or gid in self.groups

    # -- transitions (security/commoncap.c) --------------------------------------------------------
    def fixed_after_setuid(self, old: Credentials, fs_only: bool = False) -> Credentials:
        """Apply ``cap_task_fix_setuid``: drop or raise capabilities after a uid change."""
        new = self
        if not fs_only:
            if ((old.ruid == 0 or old.euid == 0 or old.suid == 0)
                    and new.ruid != 0 and new.euid != 0 and new.suid != 0):
                if not new.keep_caps:
                    new = replace(new, cap_permitted=0, cap_effective=0)
                new = replace(new, cap_ambient=0)
            if old.euid == 0 and new.euid != 0:
                new = replace(new, cap_effective=0)
            if old.euid != 0 and new.euid == 0:
                new = replace(new, cap_effective=new.cap_permitted)
        else:
            if old.fsuid == 0 and new.fsuid != 0:
                new = replace(new, cap_effective=new.cap_effective & ~CAP_FS_MASK)
            if old.fsuid != 0 and new.fsuid == 0:
                new = replace(new, cap_effective=new.cap_effective | (new.cap_permitted & CAP_FS_MASK))
        return new

    def with_changes(self, **kw: object) -> Credentials:
        return replace(self, **kw)  # type: ignore[arg-type]
