"""SysV message queues: the per-IPC-namespace engine behind msgget/msgsnd/msgrcv/msgctl.

Linux counterpart: ipc/msg.c. gVisor counterpart: pkg/sentry/kernel/msgqueue.

Modules: ``store`` (the indexed messages of one queue), ``queue`` (one queue: send, receive,
pipelining, waiter records, IPC_SET/RMID effects), ``registry`` (the namespace's queues: msgget and
msgctl and the /proc/sysvipc/msg text). The IPC namespace (kernel core) creates the registry.

Lock order of this package, outermost first (within the kernel-wide order in kernel/kernel.py):
``Registry.ids.mu`` (the registry lock: id/key tables) -> ``Queue.mu`` (one queue's state)
-> ``IPCSysctls.sysctl_mu`` (only to consume msg_next_id) / ``Task._cv`` (wakers; leaves).
Hot paths (msgsnd, msgrcv, IPC_STAT) find their queue without the registry lock and re-check
``Queue.deleted`` under ``Queue.mu``, as Linux's RCU lookups do.
"""

from mqsentry.kernel.msgqueue.queue import Queue, Receiver, Sender
from mqsentry.kernel.msgqueue.registry import Registry
from mqsentry.kernel.msgqueue.store import (
                                   SEARCH_ANY,
                                   SEARCH_EQUAL,
                                   SEARCH_LESSEQUAL,
                                   SEARCH_NOTEQUAL,
                                   SEARCH_NUMBER,
                                   MessageStore,
                                   testmsg,
)

__all__ = ["Registry", "Queue", "Receiver", "Sender", "MessageStore", "testmsg", "SEARCH_ANY", "SEARCH_EQUAL",
           "SEARCH_NOTEQUAL", "SEARCH_LESSEQUAL", "SEARCH_NUMBER"]
