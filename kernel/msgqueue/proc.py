"""/proc/sysvipc/msg: the SysV message queues of the reader's IPC namespace.

Linux counterpart: ``sysvipc_msg_proc_show`` (ipc/msg.c) and the seq_file iterator in ipc/util.c.
gVisor counterpart: none (gVisor has no /proc/sysvipc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqsentry.kernel.task import Task


def sysvipc_msg(t: "Task") -> str:
    """The file's text as ``t`` reads it."""
    return t.ipc_ns.msgqueues.proc_text()  # type: ignore[attr-defined, no-any-return]
