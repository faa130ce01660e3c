"""Queue attribute validation and the per-user RLIMIT_MSGQUEUE charge.

Linux counterpart: ipc/mqueue.c ``mqueue_get_inode`` (attribute checks, ``mq_treesize``/``mq_bytes``,
``inc_rlimit_ucounts(UCOUNT_RLIMIT_MSGQUEUE)``) and ``mqueue_evict_inode`` (the release).
gVisor counterpart: none (pkg/sentry/kernel/mq checks only maxmsg and enforces no RLIMIT_MSGQUEUE).

Linux charges ``struct ucounts`` of the creator's *real* uid in its user namespace, so the sum spans
every IPC namespace; the sentry has one user namespace, hence one table per kernel (its
``mq_user_bytes`` field).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mqsentry.abi.linux.capability import CAP_SYS_RESOURCE
from mqsentry.abi.linux.errno import EINVAL, EMFILE, EOVERFLOW
from mqsentry.abi.linux.mqueue import (
    HARD_MSGMAX,
    HARD_MSGSIZEMAX,
    MQ_PRIO_MAX,
    SIZEOF_MSG_MSG,
    SIZEOF_POSIX_MSG_TREE_NODE,
)
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.kernel.auth.credentials import Credentials
    from mqsentry.kernel.ipc_sysctl import IPCSysctls

ULONG_MAX = 0xFFFF_FFFF_FFFF_FFFF


def default_attr(ns: IPCSysctls) -> tuple[int, int]:
    """(maxmsg, msgsize) of a queue created without attributes: the defaults capped by the maxima."""
    return min(ns.mq_msg_max, ns.mq_msg_default), min(ns.mq_msgsize_max, ns.mq_msgsize_default)


def validate_attr(ns: IPCSysctls, creds: Credentials, maxmsg: int, msgsize: int) -> int:
    """Check a new queue's attributes in Linux's order; return its RLIMIT_MSGQUEUE cost.

    ``maxmsg``/``msgsize`` are the C ``long`` values. EINVAL for non-positive values or values
    above the limits (the HARD limits with CAP_SYS_RESOURCE, the namespace's sysctls without);
    EOVERFLOW when the byte count would overflow an unsigned long.
    """
    if maxmsg <= 0 or msgsize <= 0:
        raise SysError(EINVAL)
    if creds.has_cap(CAP_SYS_RESOURCE):
        if maxmsg > HARD_MSGMAX or msgsize > HARD_MSGSIZEMAX:
            raise SysError(EINVAL)
    elif maxmsg > ns.mq_msg_max or msgsize > ns.mq_msgsize_max:
        raise SysError(EINVAL)
    if msgsize > ULONG_MAX // maxmsg:
        raise SysError(EOVERFLOW)
    cost = queue_cost(maxmsg, msgsize)
    if cost > ULONG_MAX:
        raise SysError(EOVERFLOW)
    return cost


def queue_cost(maxmsg: int, msgsize: int) -> int:
    """Bytes charged to RLIMIT_MSGQUEUE: the payload plus worst-case ``msg_msg`` and tree nodes."""
    return maxmsg * msgsize + maxmsg * SIZEOF_MSG_MSG + min(maxmsg, MQ_PRIO_MAX) * SIZEOF_POSIX_MSG_TREE_NODE


class UserBytes:
    """Bytes of queue memory charged to each real uid (Linux ``UCOUNT_RLIMIT_MSGQUEUE``).

    Guarded by ``mu`` (taken after the mqueue filesystem lock, never with a queue lock): ``_bytes``.
    """

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self._bytes: dict[int, int] = {}

    def charge(self, uid: int, cost: int, limit: int) -> None:
        """Add ``cost`` for ``uid``; EMFILE (and no charge) if the total would pass ``limit``."""
        with self.mu:
            total = self._bytes.get(uid, 0) + cost
            if total > limit:
                raise SysError(EMFILE)
            self._bytes[uid] = total

    def release(self, uid: int, cost: int) -> None:
        with self.mu:
            left = self._bytes.get(uid, 0) - cost
            if left > 0:
                self._bytes[uid] = left
            else:
                self._bytes.pop(uid, None)

    def charges_locked(self) -> dict[int, int]:
        """A copy of every non-zero charge, uid -> bytes (caller holds ``mu``; for checkers)."""
        return {u: b for u, b in self._bytes.items() if b}

    def charged(self, uid: int) -> int:
        """Bytes currently charged to ``uid`` (diagnostics and tests)."""
        return self._bytes.get(uid, 0)


__all__ = ["default_attr", "validate_attr", "queue_cost", "UserBytes"]
