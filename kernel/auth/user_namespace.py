"""User namespaces: how a namespace's uids and gids map to the kernel's ids (kuids and kgids).

Linux counterpart: kernel/user_namespace.c (``map_id_down``/``map_id_up``, ``make_kuid``,
``from_kuid``, ``from_kuid_munged``, ``cap_capable``'s walk in security/commoncap.c) and the overflow
ids of kernel/sys.c (``overflowuid``/``overflowgid``, /proc/sys/kernel/overflow{u,g}id). gVisor
counterpart: pkg/sentry/kernel/auth/user_namespace.go (``UserNamespace``, ``MapToKUID``,
``MapFromKUID``) and id_map.go.

The sentry keeps every id it stores (an IPC object's owner, a task's credentials) as a *kernel* id:
the id in the sentry's root user namespace. A task in a child namespace passes and sees ids of its
own namespace, translated at the syscall boundary exactly as Linux's handlers do: ``make_kuid`` on the
way in (an unmapped id is invalid, ``NO_ID``), ``from_kuid_munged`` on the way out (an unmapped kernel
id shows as the overflow id, 65534 by default).

The root namespace maps every id to itself. A child namespace starts with empty maps; Linux lets its
``uid_map`` and ``gid_map`` be written once each, and :meth:`UserNamespace.set_uid_map` /
:meth:`set_gid_map` follow that rule. An extent is ``(first, lower_first, count)`` with
``lower_first`` already a *kernel* id (the platform reads /proc/<pid>/uid_map from the sentry's own
namespace, where Linux prints the lower ids in the reader's namespace; in-process callers compose
with the parent's map themselves through :meth:`UserNamespace.child`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

#: (uid_t)-1: never a valid id (``uid_valid``/``gid_valid`` fail for it).
NO_ID = 0xFFFF_FFFF
#: Linux's default overflowuid/overflowgid (DEFAULT_OVERFLOWUID in include/linux/highuid.h).
OVERFLOW_ID = 65534
#: Linux's limit on a map's extents (UID_GID_MAP_MAX_EXTENTS).
MAX_EXTENTS = 340

Extent = tuple[int, int, int]  # (first, lower_first, count)


class IdMap:
    """One direction-agnostic id map (``struct uid_gid_map``): sorted, non-overlapping extents.
    Immutable."""

    __slots__ = ("extents",)

    def __init__(self, extents: Sequence[Extent] = ()) -> None:
        self.extents: tuple[Extent, ...] = tuple(sorted(extents))

    def __bool__(self) -> bool:
        return bool(self.extents)

    def down(self, id_: int) -> int:
        """``map_id_down``: the lower (kernel) id of ``id_``, NO_ID if no extent covers it."""
        for first, lower, count in self.extents:
            if first <= id_ < first + count:
                return lower + (id_ - first)
        return NO_ID

    def up(self, lower_id: int) -> int:
        """``map_id_up``: the id that maps to ``lower_id``, NO_ID if none does."""
        for first, lower, count in self.extents:
            if lower <= lower_id < lower + count:
                return first + (lower_id - lower)
        return NO_ID


def valid_extents(extents: Sequence[Extent]) -> bool:
    """The shape checks of ``map_write``: non-empty, at most MAX_EXTENTS, no zero count, no range
    wrapping past NO_ID, and no two extents overlapping in either the upper or the lower range."""
    if not extents or len(extents) > MAX_EXTENTS:
        return False
    for i, (first, lower, count) in enumerate(extents):
        if count <= 0 or not 0 <= first < NO_ID or not 0 <= lower < NO_ID:
            return False
        if first + count > NO_ID or lower + count > NO_ID:
            return False
        for f2, l2, c2 in extents[:i]:
            if first < f2 + c2 and f2 < first + count:
                return False
            if lower < l2 + c2 and l2 < lower + count:
                return False
    return True


class UserNamespace:
    """One user namespace (``struct user_namespace``).

    Immutable: ``parent``, ``owner`` (the creator's euid, a kernel id), ``level``. ``uid_map`` and
    ``gid_map`` are written at most once each (Linux's rule for /proc/<pid>/{uid,gid}_map), under
    ``_mu``; readers read the attribute without the lock (the reference swap is atomic and a map
    itself is immutable).
    """

    __slots__ = ("parent", "owner", "level", "uid_map", "gid_map", "_mu", "__weakref__")

    def __init__(self, parent: UserNamespace | None = None, owner: int = 0,
                 uid_map: IdMap | None = None, gid_map: IdMap | None = None) -> None:
        self.parent = parent
        self.owner = owner
        self.level: int = 0 if parent is None else parent.level + 1
        self.uid_map = uid_map if uid_map is not None else IdMap()
        self.gid_map = gid_map if gid_map is not None else IdMap()
        self._mu = threading.Lock()

    def __repr__(self) -> str:
        if self.parent is None:
            return "<UserNamespace root>"
        return f"<UserNamespace level={self.level} uid_map={self.uid_map.extents} gid_map={self.gid_map.extents}>"

    @property
    def is_root(self) -> bool:
        return self.parent is None

    # -- maps ------------------------------------------------------------------------------------------
    def child(self, owner: int) -> UserNamespace:
        """A new namespace below this one (``create_user_ns``), its maps still empty."""
        return UserNamespace(self, owner)

    def set_uid_map(self, extents: Sequence[Extent]) -> bool:
        """Install the uid map (kernel-id lower ranges) once; False if it was already set or the
        extents are malformed (Linux: EPERM / EINVAL from the write)."""
        return self._set("uid_map", extents)

    def set_gid_map(self, extents: Sequence[Extent]) -> bool:
        return self._set("gid_map", extents)

    def _set(self, attr: str, extents: Sequence[Extent]) -> bool:
        if self.parent is None or not valid_extents(list(extents)):
            return False
        with self._mu:
            if getattr(self, attr):
                return False
            setattr(self, attr, IdMap(extents))
        return True

    # -- translation (kernel/user_namespace.c) ---------------------------------------------------------
    def map_to_kuid(self, uid: int) -> int:
        """``make_kuid``: the kernel id of ``uid`` of this namespace; NO_ID if it is unmapped."""
        uid &= 0xFFFF_FFFF
        if self.parent is None:
            return uid
        return self.uid_map.down(uid)

    def map_to_kgid(self, gid: int) -> int:
        gid &= 0xFFFF_FFFF
        if self.parent is None:
            return gid
        return self.gid_map.down(gid)

    def map_from_kuid(self, kuid: int) -> int:
        """``from_kuid``: ``kuid`` as seen in this namespace; NO_ID if it is unmapped here."""
        if self.parent is None:
            return kuid
        return self.uid_map.up(kuid)

    def map_from_kgid(self, kgid: int) -> int:
        if self.parent is None:
            return kgid
        return self.gid_map.up(kgid)

    def map_from_kuid_munged(self, kuid: int, overflow: int = OVERFLOW_ID) -> int:
        """``from_kuid_munged``: as :meth:`map_from_kuid`, the overflow id when unmapped."""
        uid = self.map_from_kuid(kuid)
        return overflow if uid == NO_ID else uid

    def map_from_kgid_munged(self, kgid: int, overflow: int = OVERFLOW_ID) -> int:
        gid = self.map_from_kgid(kgid)
        return overflow if gid == NO_ID else gid

    # -- ancestry (security/commoncap.c cap_capable) ---------------------------------------------------
    def is_ancestor_of(self, other: UserNamespace) -> bool:
        """True if this namespace is ``other`` or one of its ancestors (``in_userns``)."""
        ns: UserNamespace | None = other
        while ns is not None:
            if ns is self:
                return True
            ns = ns.parent
        return False


#: The root namespace of every sentry (in-process tasks live there; ids map to themselves).
ROOT_USER_NAMESPACE = UserNamespace()


__all__ = ["UserNamespace", "IdMap", "ROOT_USER_NAMESPACE", "NO_ID", "OVERFLOW_ID", "MAX_EXTENTS",
           "valid_extents"]
