"""The user namespaces of host threads, mirrored in the sentry: how ids map and where capabilities count.

Linux counterpart: kernel/user_namespace.c (the namespaces, their uid_map/gid_map files), fs/nsfs.c
(``NS_GET_PARENT``, ``NS_GET_OWNER_UID``, ``NS_GET_USERNS``) and security/commoncap.c ``cap_capable``.
gVisor counterpart: pkg/sentry/kernel/auth/user_namespace.go (one ``UserNamespace`` per namespace a
task creates) and credentials.go ``HasCapabilityIn``.

:class:`HostUserNamespaces` mirrors every host user namespace a served thread is in as a sentry
:class:`~mqsentry.kernel.auth.user_namespace.UserNamespace` (parent, owner, maps) and the platform
attaches it to the thread's credentials, whose capability sets are the thread's CapEff/CapPrm as the
host shows them (held in the thread's own namespace). The kernel then asks ``ns_capable`` exactly as
Linux does: ``Credentials.has_cap_in`` walks from the object's namespace (an IPC namespace's owner)
up to the caller's, so capabilities held in a child namespace (``unshare(CLONE_NEWUSER)``) grant
nothing over IPC objects of a namespace owned by an ancestor, and ``capable()`` counts only in the
sentry's root namespace. Namespaces are identified by the device and inode of their nsfs file, read
through an open descriptor, which the kernel provides and the program cannot forge; the caller must
re-validate the notification after the read (the TID could have been reused meanwhile).
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import weakref
from dataclasses import dataclass, replace

from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.auth.user_namespace import NO_ID, ROOT_USER_NAMESPACE, UserNamespace

#: ioctls of fs/nsfs.c (``_IO(0xb7, 1)``, ``_IO(0xb7, 2)`` and ``_IO(0xb7, 4)``).
NS_GET_USERNS = 0xB701
NS_GET_PARENT = 0xB702
NS_GET_OWNER_UID = 0xB704

NsId = tuple[int, int]  # (st_dev, st_ino) of an nsfs file


def _id(fd: int) -> NsId:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def _parse_map(data: bytes) -> list[tuple[int, int, int]]:
    """The extents of a /proc/<pid>/{uid,gid}_map read from the sentry's namespace: the lower ids are
    printed in the reader's namespace, so they are the sentry's kernel ids already. A lower id the
    sentry's namespace cannot see prints as (u32)-1 and is left out (no kernel id stands for it)."""
    extents: list[tuple[int, int, int]] = []
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) != 3:
            continue
        try:
            first, lower, count = (int(x) for x in parts)
        except ValueError:
            continue
        if lower != NO_ID and count > 0:
            extents.append((first, lower, count))
    return extents


def _read_small(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 65536)
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Level:
    """One user namespace on the path from the owner up: its id, its parent's id (None above the
    sentry's reach) and the uid that created it (as the sentry sees uids). Immutable."""

    ns: NsId
    parent: NsId | None
    owner: int


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
    """One user namespace and its ancestors, for a caller that wants the capabilities a thread has
    there as one precomputed set (``cap_capable`` for every capability at once). The platform itself
    no longer uses it -- credentials carry the thread's mirrored namespace and the kernel asks
    ``Credentials.has_cap_in`` -- but a check against another namespace than an IPC namespace's owner
    (a mount's) may. Immutable after construction."""

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
        """``creds`` of thread ``tid`` with only the capabilities that count here, presented as
        credentials of the root namespace (so ``has_cap`` answers for this namespace)."""
        from mqsentry.abi.linux.capability import ALL_CAPS

        try:
            st = os.stat(f"/proc/{tid}/ns/user")
            thread_ns: NsId | None = (st.st_dev, st.st_ino)
        except OSError:
            thread_ns = None
        caps = self.effective_caps(thread_ns, creds.euid, creds.cap_effective, ALL_CAPS)
        if caps == creds.cap_effective and creds.user_ns is ROOT_USER_NAMESPACE:
            return creds
        return replace(creds, cap_effective=caps, user_ns=ROOT_USER_NAMESPACE)


class HostUserNamespaces:
    """Host user namespace -> sentry :class:`UserNamespace` (gVisor: one ``auth.UserNamespace`` per
    namespace a task creates; here the host creates them and the platform mirrors each one).

    Identity: the nsfs inode of ``/proc/<tid>/ns/user``, read through an open descriptor (never a
    path's text); the caller re-validates its notification after every lookup, so what was read is the
    calling thread's. The namespace the sentry runs in is the sentry's root namespace
    (:data:`ROOT_USER_NAMESPACE`: kernel ids are the ids /proc shows the sentry). Any other gets a
    sentry namespace on first sight: its parent from ``NS_GET_PARENT`` (the root where the walk leaves
    the sentry's view), its owner from ``NS_GET_OWNER_UID`` and its maps from /proc/<tid>/uid_map and
    gid_map. A map can be written once, after the namespace exists: a namespace whose maps are still
    empty is read again at the next lookup (:meth:`of_thread` with a thread in it), so a program that
    unshares and then writes its maps is seen with them. Each mirrored host namespace's descriptor is
    kept (its inode number cannot be reused by a new namespace while we hold it) for as long as the
    mirror is in use: the map holds the mirror weakly (credentials, IPC namespaces, IPC objects and
    notifications hold it strongly), and an entry whose mirror is gone is dropped, with its
    descriptor, the next time a new namespace is mirrored -- so a program that makes many user
    namespaces does not pin them all. An identity test (``is``) between mirrors stays sound: a host
    namespace has one live mirror at a time.

    Locks: ``_mu`` guards ``_by_key``; /proc is read without it.
    """

    def __init__(self) -> None:
        fd = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.root_key = _id(fd)
        finally:
            os.close(fd)
        self.root = ROOT_USER_NAMESPACE
        self._mu = threading.Lock()
        self._by_key: dict[NsId, tuple[weakref.ref[UserNamespace], int]] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def of_thread(self, tid: int) -> UserNamespace | None:
        """The sentry namespace of host thread ``tid``'s user namespace, its maps read from
        /proc/<tid>; None if the thread is gone. The caller re-validates its notification after."""
        try:
            fd = os.open(f"/proc/{tid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            key = _id(fd)
            if key == self.root_key:
                return self.root
            ns = self._of_fd(fd, key)
            for name, written, set_map in (("uid_map", ns.uid_map, ns.set_uid_map),
                                           ("gid_map", ns.gid_map, ns.set_gid_map)):
                if written:
                    continue  # a map is written once
                data = _read_small(f"/proc/{tid}/{name}")
                if data is None:
                    return None
                extents = _parse_map(data)
                if extents:
                    set_map(extents)
            return ns
        finally:
            os.close(fd)

    def owner_of(self, ns_fd: int) -> UserNamespace:
        """The mirror of the user namespace owning the (non-user) namespace open at ``ns_fd``
        (``NS_GET_USERNS``); the root when the host does not say (above our view)."""
        try:
            ufd = fcntl.ioctl(ns_fd, NS_GET_USERNS)
        except OSError:
            return self.root
        try:
            key = _id(ufd)
            return self.root if key == self.root_key else self._of_fd(ufd, key)
        finally:
            os.close(ufd)

    def _of_fd(self, fd: int, key: NsId) -> UserNamespace:
        """The mirror of the namespace open at ``fd`` (not closed here), made with its ancestors."""
        with self._mu:
            got = self._by_key.get(key)
            live = got[0]() if got is not None else None
        if live is not None:
            return live
        try:
            parent_fd = fcntl.ioctl(fd, NS_GET_PARENT)
        except OSError:
            parent = self.root  # above the sentry's view, or unrelated: ids are the sentry's anyway
        else:
            try:
                pkey = _id(parent_fd)
                parent = self.root if pkey == self.root_key else self._of_fd(parent_fd, pkey)
            finally:
                os.close(parent_fd)
        buf = bytearray(4)
        try:
            fcntl.ioctl(fd, NS_GET_OWNER_UID, buf, True)
            owner = struct.unpack("=I", buf)[0]
        except OSError:
            owner = NO_ID
        ns = parent.child(owner)
        pin = os.dup(fd)
        unpin: list[int] = []
        with self._mu:
            got = self._by_key.get(key)
            live = got[0]() if got is not None else None
            if live is None:
                # Drop the entries nothing uses any more (this one's stale predecessor included).
                for k, (ref, old_pin) in list(self._by_key.items()):
                    if ref() is None:
                        del self._by_key[k]
                        unpin.append(old_pin)
                self._by_key[key] = (weakref.ref(ns), pin)
        for old_pin in unpin:
            os.close(old_pin)
        if live is None:
            return ns
        os.close(pin)  # another thread mirrored it meanwhile
        return live

    def close(self) -> None:
        with self._mu:
            pins, self._by_key = [fd for _ref, fd in self._by_key.values()], {}
        for fd in pins:
            os.close(fd)


__all__ = ["HostUserNamespaces", "NsId", "NS_GET_PARENT", "NS_GET_USERNS", "NS_GET_OWNER_UID", "OwnerNamespace",
           "Level", "chain_of"]
