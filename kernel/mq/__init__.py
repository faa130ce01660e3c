"""POSIX message queues: the queue engine, notifications and per-user accounting.

Linux counterpart: ipc/mqueue.c (``struct mqueue_inode_info``, ``msg_insert``/``msg_get``,
``wq_sleep``, ``pipelined_send``/``pipelined_receive``, ``__do_notify``, ``remove_notification``,
the RLIMIT_MSGQUEUE charge in ``mqueue_get_inode``). gVisor counterpart: pkg/sentry/kernel/mq
(``Queue``, ``Message``, ``Subscriber``, ``View``) plus the unmerged send/receive/notify stack of
PR 6458, redesigned here to follow Linux (pipelined hand-off, FIFO waiters, absolute deadlines).

The name space of queues is the mqueue filesystem of each IPC namespace (``mqsentry.fs.mqfs``), as in Linux
where ``ipc_ns->mq_mnt`` is the registry. This package declares the interface, :class:`Registry`
(gVisor's ``mq.RegistryImpl``), that ``mqsentry.fs.mqfs.MqueueFilesystem`` implements and the IPC namespace
holds; the composition root (:mod:`mqsentry.boot`) picks the implementation.

Lock order of the package (outermost first; it slots into the global order of kernel/kernel.py):

    mqsentry.fs.mqfs.MqueueFilesystem.mu   (the registry/fs lock: names, queue count; Linux's root inode lock)
      -> limits.UserBytes.mu           (RLIMIT_MSGQUEUE charges, per kernel; Linux's mq_lock)
      -> queue.Queue.mu                (one queue's messages, waiters and notification)
        -> Kernel.sig_mu                 (SIGEV_SIGNAL delivery)
        -> netlink socket ``mu``         (SIGEV_THREAD cookie delivery)
          -> waiter.Queue._mu, Task._cv  (leaves: wake-ups)

``UserBytes.mu`` and ``Queue.mu`` are never held together.
"""

from mqsentry.kernel.mq.limits import UserBytes, queue_cost, validate_attr
from mqsentry.kernel.mq.notify import Notification
from mqsentry.kernel.mq.queue import Queue, Waiter
from mqsentry.kernel.mq.registry import Registry

__all__ = ["Queue", "Waiter", "Notification", "UserBytes", "Registry", "queue_cost", "validate_attr"]
