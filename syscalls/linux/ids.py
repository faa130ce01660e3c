"""Ids at the syscall boundary: uids, gids and pids as the calling task's namespaces see them.

Linux counterpart: the ``make_kuid``/``from_kuid_munged`` calls of ipc/util.c ``ipc_update_perm`` and
``kernel_to_ipc64_perm``, and ``pid_vnr`` in ipc/msg.c ``msgctl_stat`` (msg_lspid/msg_lrpid). gVisor
counterpart: the ``MapToKUID``/``MapFromKUID`` calls of pkg/sentry/kernel/ipc/object.go ``Set`` and
``pkg/sentry/kernel/msgqueue`` ``Stat`` (gVisor translates pids with its own PIDNamespace).

The engines keep kernel ids (the sentry's root user namespace) and root-namespace pids; a handler
translates on the way in (an id the caller's namespace does not map becomes NO_ID, which the engine
refuses with EINVAL at Linux's place, after the permission checks) and on the way out (an unmapped
kernel id shows as the overflow id, an invisible pid as 0). A task of the root namespaces pays one
attribute test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqsentry.abi.linux.msgqueue import MSQID64_DS

if TYPE_CHECKING:
    from mqsentry.kernel.task import Task

_UID = MSQID64_DS.index("perm.uid")
_GID = MSQID64_DS.index("perm.gid")
_CUID = MSQID64_DS.index("perm.cuid")
_CGID = MSQID64_DS.index("perm.cgid")
_LSPID = MSQID64_DS.index("lspid")
_LRPID = MSQID64_DS.index("lrpid")


def perm_in(t: Task, uid: int, gid: int) -> tuple[int, int]:
    """IPC_SET's owner as kernel ids (``make_kuid``/``make_kgid`` in the caller's user namespace)."""
    ns = t.creds.user_ns
    if ns.parent is None:
        return uid & 0xFFFF_FFFF, gid & 0xFFFF_FFFF
    return ns.map_to_kuid(uid), ns.map_to_kgid(gid)


def msqid_out(t: Task, fields: tuple[int, ...]) -> tuple[int, ...]:
    """A ``msqid64_ds``'s field values (MSQID64_DS order) as the caller sees them: owner and creator
    through ``from_kuid_munged``/``from_kgid_munged``, msg_lspid/msg_lrpid through ``pid_vnr``."""
    ns = t.creds.user_ns
    view = t.kernel.pid_view
    if ns.parent is None and view is None:
        return fields
    out = list(fields)
    if ns.parent is not None:
        out[_UID] = ns.map_from_kuid_munged(out[_UID])
        out[_CUID] = ns.map_from_kuid_munged(out[_CUID])
        out[_GID] = ns.map_from_kgid_munged(out[_GID])
        out[_CGID] = ns.map_from_kgid_munged(out[_CGID])
    if view is not None:
        for i in (_LSPID, _LRPID):
            if out[i]:
                out[i] = view(t, out[i])
    return tuple(out)


__all__ = ["perm_in", "msqid_out"]
