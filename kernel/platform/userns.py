"""Which capabilities of a host thread count for the sentry's IPC namespace (``ns_capable``).

Linux counterpart: security/commoncap.c ``cap_capable`` (the walk from the object's user namespace up
to the caller's), kernel/user_namespace.c and fs/nsfs.c (``NS_GET_PARENT``, ``NS_GET_OWNER_UID``).
gVisor counterpart: pkg/sentry/kernel/auth/credentials.go ``HasCapabilityIn``.

The sentry's IPC namespace is owned by one host user namespace (the one the program was started in).
A capability in CapEff of /proc/<tid>/status counts only if the thread's user namespace is that
namespace, or an ancestor of it; and a thread whose euid owns a child namespace on the path has every
capability there (``cap_capable``'s owner rule). A thread in a descendant (``unshare(CLONE_NEWUSER)``)
or an unrelated namespace has none. The thread's namespace is identified by the device and inode of
``/proc/<tid>/ns/user``, which the kernel provides and the program cannot forge; the caller must
re-validate the notification after the read (the TID could have been reused meanwhile).
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass, replace

from mqsentry.kernel.auth.credentials import Credentials

#: ioctls of fs/nsfs.c (``_IO(0xb7, 2)`` and ``_IO(0xb7, 4)``).
NS_GET_PARENT = 0xB702
NS_GET_OWNER_UID = 0xB704

NsId = tuple[int, int]  # (st_dev, st_ino) of an nsfs file


@dataclass(frozen=True, slots=True)
class Level:
    """One user namespace on the path from the owner up: its id, its parent's id (None above the
    sentry's reach) and the uid that created it (as the sentry sees uids). Immutable."""

    ns: NsId
    parent: NsId | None
    owner: int


def _id(fd: int) -> NsId:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def chain_of(fd: int) -> tuple[Level, ...]:
    """The owner namespace (open at ``fd``, not closed here) and its ancestors as far as this process
    may see them (NS_GET_PARENT says EPERM above its own namespace)."""
    levels: list[Level] = []
    cur = os.dup(fd)
    try:
        while True:
            me = _id(cur)
            buf = bytearray(4)
            try:
                fcntl.ioctl(cur, NS_GET_OWNER_UID, buf, True)
                owner = struct.unpack("=I", buf)[0]
            except OSError:
                owner = -1
            try:
                parent = fcntl.ioctl(cur, NS_GET_PARENT)
            except OSError:
                levels.append(Level(me, None, owner))
                break
            levels.append(Level(me, _id(parent), owner))
            os.close(cur)
            cur = parent
    finally:
        os.close(cur)
    return tuple(levels)


class OwnerNamespace:
    """The user namespace that owns the sentry's IPC namespace. Immutable after construction."""

    def __init__(self, pid: int | None = None) -> None:
        """The user namespace of ``pid`` (a process the sentry started and trusts), else the sentry's."""
        path = f"/proc/{pid}/ns/user" if pid is not None else "/proc/self/ns/user"
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.chain = chain_of(fd)
        finally:
            os.close(fd)
        self.id = self.chain[0].ns

    @classmethod
    def from_chain(cls, chain: tuple[Level, ...]) -> OwnerNamespace:
        """The namespace at the head of ``chain`` (from :func:`chain_of`): for ``ns_capable`` checks
        against another namespace than the IPC namespace's owner (mqmount.py's ``may_mount``)."""
        obj = cls.__new__(cls)
        obj.chain = chain
        obj.id = chain[0].ns
        return obj

    def effective_caps(self, thread_ns: NsId | None, euid: int, cap_effective: int, all_caps: int) -> int:
        """The capability set that counts for the IPC namespace (``cap_capable`` for every cap at once)."""
        if thread_ns is None:
            return 0
        for level in self.chain:
            if level.ns == thread_ns:
                return cap_effective
            if level.parent == thread_ns and level.owner == euid:
                return all_caps  # the owner of a child namespace has every capability in it
        return 0

    def creds_for(self, tid: int, creds: Credentials) -> Credentials:
        """``creds`` of thread ``tid`` with only the capabilities that count here."""
        from mqsentry.abi.linux.capability import ALL_CAPS

        try:
            st = os.stat(f"/proc/{tid}/ns/user")
            thread_ns: NsId | None = (st.st_dev, st.st_ino)
        except OSError:
            thread_ns = None
        caps = self.effective_caps(thread_ns, creds.euid, creds.cap_effective, ALL_CAPS)
        if caps == creds.cap_effective:
            return creds
        return replace(creds, cap_effective=caps)


__all__ = ["OwnerNamespace", "Level", "chain_of"]
