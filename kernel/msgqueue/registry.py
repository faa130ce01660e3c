"""The message queues of one IPC namespace: msgget and the msgctl commands.

Linux counterpart: ipc/msg.c (``newque``, ``ksys_msgget`` via ``ipcget``, ``msgctl_info``,
``msgctl_stat``, ``msgctl_down``, ``freeque``, ``msg_exit_ns``) and ``ipcget_public`` in ipc/util.c.
gVisor counterpart: pkg/sentry/kernel/msgqueue/msgqueue.go (``Registry``), without its divergences
D1 (RMID errors), D3 (msgget permission), D5 (INFO/STAT return values) and D6 (IPC_SET), as
defined in docs/gvisor-divergences.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqsentry.abi.linux.capability import CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EACCES, EEXIST, EIDRM, EINVAL, ENOENT, EPERM
from mqsentry.abi.linux.ipc import IPC_CREAT, IPC_EXCL, IPC_PRIVATE, IPC_STAT
from mqsentry.abi.linux.msgqueue import MSG_INFO, MSG_STAT_ANY, MSGMAP, MSGPOOL, MSGSEG, MSGSSZ, MSGTQL
from mqsentry.kernel.errors import SysError
from mqsentry.kernel.ipc import Registry as IDRegistry
from mqsentry.kernel.ipc import ipcperms, may_control
from mqsentry.kernel.ipc.object import S_IRUGO
from mqsentry.kernel.msgqueue.queue import MASK64, Queue

if TYPE_CHECKING:
    from mqsentry.kernel.auth.user_namespace import UserNamespace
    from mqsentry.kernel.context import TaskContext
    from mqsentry.kernel.ipc_sysctl import IPCSysctls

INT_MAX = 0x7FFF_FFFF
#: (uid_t)-1 / (gid_t)-1: never a valid id (``uid_valid`` fails in ipc_update_perm).
_INVALID_ID = 0xFFFF_FFFF


class Registry:
    """All SysV message queues of one IPC namespace (``msg_ids(ns)``).

    ``ids.mu`` is the registry lock (Linux's ``msg_ids(ns).rwsem``): msgget, IPC_SET, IPC_RMID,
    IPC_INFO/MSG_INFO and /proc listings hold it. Immutable: ``ns``, ``ids`` and ``by_idx`` (the
    tables themselves are guarded by ``ids.mu``; see :class:`mqsentry.kernel.ipc.Registry`). ``by_idx`` is the
    index table, exposed for the msgsnd/msgrcv fast path's lock-free lookup.
    """

    def __init__(self, ns: IPCSysctls) -> None:
        self.ns = ns
        self.ids: IDRegistry[Queue] = IDRegistry()
        self.by_idx = self.ids.by_idx

    def _take_next_id(self) -> int:
        ns = self.ns
        with ns.sysctl_mu:
            next_id, ns.msg_next_id = ns.msg_next_id, -1
        return next_id

    # -- msgget ---------------------------------------------------------------------------------------
    def get(self, t: TaskContext, key: int, msgflg: int) -> int:
        """``msgget``: the id of the queue for ``key``, creating it as ``msgflg`` asks."""
        with self.ids.mu:
            if key != IPC_PRIVATE:
                q = self.ids.find_key_locked(key)
                if q is not None:
                    if msgflg & IPC_CREAT and msgflg & IPC_EXCL:
                        raise SysError(EEXIST)
                    if not ipcperms(t.creds, q, msgflg):
                        raise SysError(EACCES)
                    return q.id
                if not msgflg & IPC_CREAT:
                    raise SysError(ENOENT)
            ns = self.ns
            q = Queue(self, key, t.creds, msgflg, ns.msg_ctlmnb, t.kernel.clock.now_s())
            q.user_ns = ns.user_ns
            return self.ids.add_locked(q, ns.msg_ctlmni, self._take_next_id)

    # -- lookups ----------------------------------------------------------------------------------------
    def lookup(self, msqid: int) -> Queue:
        """``msq_obtain_object_check``: by full id; EINVAL if absent or stale."""
        return self.ids.obtain_check(msqid)

    # -- msgctl ---------------------------------------------------------------------------------------
    def info(self, cmd: int) -> tuple[int, tuple[int, ...]]:
        """IPC_INFO / MSG_INFO: (highest used index or 0, ``msginfo`` field values)."""
        ns = self.ns
        with self.ids.mu:
            if cmd == MSG_INFO:
                msgpool = self.ids.in_use
                # percpu_counter_sum of queued headers/bytes; read without the queue locks, which is
                # no less exact than Linux's per-CPU sums.
                hdrs = nbytes = 0
                for q in self.ids.objects_locked():
                    s = q.store
                    hdrs += s.qnum
                    nbytes += s.cbytes
                msgmap = min(_c_int(hdrs), INT_MAX)
                msgtql = min(_c_int(nbytes), INT_MAX)
            else:
                msgpool, msgmap, msgtql = MSGPOOL, MSGMAP, MSGTQL
            max_idx = self.ids.max_idx_locked()
        fields = (msgpool, msgmap, ns.msg_ctlmax, ns.msg_ctlmnb, ns.msg_ctlmni, MSGSSZ, msgtql, MSGSEG)
        return (max_idx if max_idx > 0 else 0), fields

    def stat(self, t: TaskContext, msqid: int, cmd: int) -> tuple[int, tuple[int, ...]]:
        """IPC_STAT / MSG_STAT / MSG_STAT_ANY: (return value, ``msqid64_ds`` field values)."""
        q = self.ids.obtain_check(msqid) if cmd == IPC_STAT else self.ids.obtain_idx(msqid)
        if cmd != MSG_STAT_ANY and not ipcperms(t.creds, q, S_IRUGO):
            raise SysError(EACCES)
        with q.mu:
            if q.deleted:
                raise SysError(EIDRM)
            fields = q.stat_locked()
            ret = 0 if cmd == IPC_STAT else q.id
        return ret, fields

    def set(self, t: TaskContext, msqid: int, uid: int, gid: int, mode: int, qbytes: int) -> None:
        """IPC_SET (``msgctl_down``); ``qbytes`` is the raw ``msg_qbytes`` the caller passed."""
        qbytes = _c_int(qbytes)  # ksys_msgctl hands msg_qbytes to msgctl_down as an int
        with self.ids.mu:
            q = self.ids.obtain_check(msqid)
            c = t.creds
            if not may_control(c, q):
                raise SysError(EPERM)
            # int vs unsigned int msg_ctlmnb: C compares as unsigned, so a negative qbytes (2^31 and
            # above as passed) counts as huge and needs CAP_SYS_RESOURCE.
            if (qbytes & 0xFFFF_FFFF) > self.ns.msg_ctlmnb and not c.has_cap(CAP_SYS_RESOURCE):
                raise SysError(EPERM)
            with q.mu:
                if uid == _INVALID_ID or gid == _INVALID_ID:
                    raise SysError(EINVAL)
                # q_qbytes is unsigned long: a negative int sign-extends, as in C.
                q.set_locked(uid, gid, mode, qbytes & MASK64, t.kernel.clock.now_s())

    def remove(self, t: TaskContext, msqid: int) -> None:
        """IPC_RMID (``msgctl_down`` -> ``freeque``)."""
        with self.ids.mu:
            q = self.ids.obtain_check(msqid)
            if not may_control(t.creds, q):
                raise SysError(EPERM)
            with q.mu:
                self._free_locked(q)

    def _free_locked(self, q: Queue) -> None:
        q.destroy_locked()
        self.ids.remove_locked(q)

    def destroy(self) -> None:
        """``msg_exit_ns``/``free_ipcs``: remove every queue, as IPC_RMID would (namespace death)."""
        with self.ids.mu:
            for q in list(self.ids.objects_locked()):
                with q.mu:
                    self._free_locked(q)

    # -- /proc/sysvipc/msg ---------------------------------------------------------------------------
    def proc_text(self, user_ns: UserNamespace | None = None) -> str:
        """The text of /proc/sysvipc/msg (``sysvipc_msg_proc_show``), its ids as ``user_ns`` (the
        opener's, ``seq_user_ns``) sees them: ``from_kuid_munged``/``from_kgid_munged``. Pids are the
        procfs's pid namespace's; the sentry's files are bound over the root namespace's /proc."""
        lines = [PROC_HEADER]
        uid_of = None if user_ns is None or user_ns.parent is None else user_ns.map_from_kuid_munged
        gid_of = None if user_ns is None or user_ns.parent is None else user_ns.map_from_kgid_munged
        with self.ids.mu:
            for q in self.ids.objects_locked():
                with q.mu:
                    s = q.store
                    uid, gid, cuid, cgid = q.uid, q.gid, q.cuid, q.cgid
                    if uid_of is not None and gid_of is not None:
                        uid, gid, cuid, cgid = uid_of(uid), gid_of(gid), uid_of(cuid), gid_of(cgid)
                    lines.append(PROC_ROW % (q.key, q.id, q.mode, s.cbytes, s.qnum, q.lspid, q.lrpid, uid,
                                             gid, cuid, cgid, q.stime, q.rtime, q.ctime))
        return "".join(lines)


PROC_HEADER = ("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid"
               "      stime      rtime      ctime\n")
PROC_ROW = "%10d %10d  %4o  %10d %10d %5d %5d %5d %5d %5d %5d %10d %10d %10d\n"


def _c_int(v: int) -> int:
    """Truncate to a C ``int``."""
    return ((v & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000
