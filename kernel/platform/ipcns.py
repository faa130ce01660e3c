"""Which sentry IPC namespace a host thread is in: the host's own IPC namespaces, mapped one to one.

Linux counterpart: ``current->nsproxy->ipc_ns`` (include/linux/nsproxy.h) as clone, unshare and setns
set it (kernel/nsproxy.c, ipc/namespace.c ``copy_ipcs``/``free_ipc_ns``). gVisor counterpart:
``Task.IPCNamespace()`` (pkg/sentry/kernel/task.go), which gVisor's own clone/unshare/setns maintain.

The mapping
-----------
The host kernel already tracks every thread's IPC namespace, so clone, clone3, unshare and setns need
no emulation: the platform asks the host which namespace a calling thread is in and maps that host
namespace to one sentry :class:`IPCNamespace`.

* Identity: the nsfs inode of ``/proc/<tid>/ns/ipc`` (device and inode number), read by opening the
  file and ``fstat``-ing the descriptor; the caller then re-validates the notification ID, so the
  identity read belongs to the thread that made the call (a TID can die and be reused meanwhile).
* When it is read: when the platform first meets a thread, and again after the thread was seen
  calling unshare or setns (both are observed syscalls: seen, marked, continued). A thread cannot
  change namespace otherwise; a new thread or process always starts with a fresh read. So the
  served fast path pays nothing.
* The host namespace the sentry itself is in (the program's initial namespace) is the kernel's root
  namespace; ``--sysctl`` sets that one only, as the host's own sysctls do. Every other host namespace
  gets, on first sight, a fresh sentry namespace with Linux's defaults.
* Lifetime: the map keeps a descriptor of each non-initial host namespace, which pins its inode
  number (a freed namespace's number could otherwise be reused by a new one and inherit its queues).
  The sentry namespace is pinned too (``IPCNamespace.pins``), because host processes the sentry never
  served (a shell that ran ``unshare -i``) keep the namespace alive on Linux. :meth:`NamespaceMap.sweep`,
  run when a served process exits, frees a namespace -- its queues go as ``free_ipc_ns`` removes them
  -- once no live sentry task is in it and no host process is in it or holds a descriptor of it
  (one scan of /proc), and no mount namespace of a live process has its nsfs file bind-mounted (as
  ``unshare --ipc=FILE`` does: Linux keeps the namespace, and ``setns`` through the mount finds its
  queues). A namespace pinned only by a bind mount in a mount namespace nobody is in (itself kept by a
  bind mount of its ``ns/mnt`` file) is not seen, and is freed.

Locks: ``_mu`` guards ``_by_host`` and each entry; it is never held while calling into the kernel.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqsentry.kernel.platform.userns import HostUserNamespaces

if TYPE_CHECKING:
    from mqsentry.kernel.ipc_namespace import IPCNamespace
    from mqsentry.kernel.kernel import Kernel

log = logging.getLogger("mqsentry.platform")

HostKey = tuple[int, int]  # (st_dev, st_ino) of an nsfs inode


@dataclass(slots=True)
class Mapped:
    """A non-initial host namespace: its sentry namespace and our descriptor of it (pins the
    inode). Guarded by ``NamespaceMap._mu``."""

    ns: IPCNamespace
    fd: int


def host_namespace(tid: int) -> tuple[HostKey, int] | None:
    """The host IPC namespace of ``tid``: its key and an open descriptor of it (the caller closes or
    keeps it); None if the thread is gone."""
    try:
        fd = os.open(f"/proc/{tid}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    return (st.st_dev, st.st_ino), fd


class NamespaceMap:
    """Host IPC namespace -> sentry IPC namespace, for one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        st = os.stat("/proc/self/ns/ipc")
        self.root_key: HostKey = (st.st_dev, st.st_ino)
        self._mu = threading.Lock()
        self._by_host: dict[HostKey, Mapped] = {}
        #: The host user namespaces mirrored for this kernel (ids at the syscall boundary and in the
        #: served /proc files); shared by the platform and the /proc file server.
        self.users = HostUserNamespaces()

    def lookup(self, tid: int) -> IPCNamespace | None:
        """The sentry namespace of host thread ``tid`` (created on first sight); None if it is gone.
        The caller re-validates its notification after this, so the answer is the caller's."""
        got = host_namespace(tid)
        if got is None:
            return None
        key, fd = got
        if key == self.root_key:
            os.close(fd)
            return self.kernel.root_ipc_ns
        with self._mu:
            m = self._by_host.get(key)
            if m is not None and not m.ns.dead:
                os.close(fd)
                return m.ns
            stale = m
            ns = self.kernel.new_ipc_namespace()
            # Owned by the user namespace that created it (ns->user_ns): capabilities over its objects
            # and its sysctls' owner are counted there.
            ns.user_ns = self.users.owner_of(fd)
            ns.pins = 1
            self._by_host[key] = Mapped(ns, fd)
        if stale is not None:
            os.close(stale.fd)
        log.debug("host IPC namespace %s of thread %d -> a new sentry namespace", key, tid)
        return ns

    def __len__(self) -> int:
        return len(self._by_host)

    def sweep(self) -> None:
        """Free the sentry namespaces whose host namespaces nobody is in any more (see the module
        docstring). Cheap when only the initial namespace is in use."""
        with self._mu:
            if not self._by_host:
                return
            candidates = {k: m for k, m in self._by_host.items() if not self._has_live_task(m.ns)}
        if not candidates:
            return
        busy = _host_users(set(candidates))
        freed: list[Mapped] = []
        with self._mu:
            for key, m in candidates.items():
                if key not in busy and self._by_host.get(key) is m:
                    del self._by_host[key]
                    freed.append(m)
        for m in freed:
            os.close(m.fd)
            m.ns.pins = 0
            self.kernel.ipc_ns_released(m.ns)

    def _has_live_task(self, ns: IPCNamespace) -> bool:
        with self.kernel.tasks_mu:
            return any(t.ipc_ns is ns and not t.exited for t in self.kernel.tasks.values())

    def close(self) -> None:
        with self._mu:
            mapped, self._by_host = list(self._by_host.values()), {}
        for m in mapped:
            os.close(m.fd)
        self.users.close()


def _host_users(keys: set[HostKey]) -> set[HostKey]:
    """Which of ``keys`` some host thread is in or some process holds a descriptor of (our own
    descriptors excepted)."""
    found: set[HostKey] = set()
    me = os.getpid()
    inos = {ino: (dev, ino) for dev, ino in keys}
    mount_namespaces: set[tuple[int, int]] = set()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return set(keys)  # cannot tell: keep everything
    for pid in pids:
        found |= _bound_in_mount_ns(pid, keys, mount_namespaces)
        if pid == me:
            continue
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                st = os.stat(f"/proc/{pid}/task/{tid}/ns/ipc")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in keys:
                found.add((st.st_dev, st.st_ino))
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("ipc:["):
                try:
                    key = inos.get(int(link[5:-1]))
                except ValueError:
                    continue
                if key is not None:
                    found.add(key)
        if found == keys:
            break
    return found


def _bound_in_mount_ns(pid: int, keys: set[HostKey], seen: set[tuple[int, int]]) -> set[HostKey]:
    """Which of ``keys`` are bind-mounted (an nsfs mount of ``ipc:[inode]``) in the mount namespace
    of ``pid``; each mount namespace is read once per sweep (``seen``). mountinfo is the kernel's
    text: a mount's root field and type cannot be chosen by a program (a file named ``ipc:[N]`` would
    show with a leading ``/`` and its own file system type), and at worst a namespace is kept."""
    try:
        st = os.stat(f"/proc/{pid}/ns/mnt")
        mnt = (st.st_dev, st.st_ino)
        if mnt in seen:
            return set()
        seen.add(mnt)
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    bound: set[HostKey] = set()
    for line in lines:
        fields = line.split()
        try:
            fstype = fields[fields.index("-") + 1]
        except (ValueError, IndexError):
            continue
        root = fields[3]
        if fstype != "nsfs" or not root.startswith("ipc:[") or not root.endswith("]"):
            continue
        try:
            major, minor = (int(x) for x in fields[2].split(":"))
            key = (os.makedev(major, minor), int(root[5:-1]))
        except ValueError:
            continue
        if key in keys:
            bound.add(key)
    return bound


def resolver(kernel: Kernel, nsmap: NamespaceMap | None = None) -> Callable[[int], IPCNamespace | None]:
    """``tid -> namespace`` for ``kernel``'s served threads (through ``nsmap`` when given)."""
    if nsmap is not None:
        return nsmap.lookup
    root = kernel.root_ipc_ns
    return lambda tid: root


__all__ = ["Mapped", "NamespaceMap", "host_namespace", "resolver"]
