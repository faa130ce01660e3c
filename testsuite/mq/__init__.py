"""POSIX message-queue conformance tests (mq_open/mq_unlink/mq_timedsend/mq_timedreceive/mq_notify/
mq_getsetattr, the mq descriptor and the mqueue filesystem, limits and namespaces).

Linux counterpart: ipc/mqueue.c is the specification (docs/porting-map.md names the functions);
every test also runs on the native target, which is the proof. gVisor counterpart:
test/syscalls/linux/mq.cc (its 16 ``MqTest`` cases) and the 31 extra cases of the unmerged
send/receive/notify stack (refs/pull/6458), rewritten in Python with their flaws fixed (absolute
CLOCK_REALTIME timeouts, Linux's errno for every case), plus the Linux rules they leave out.

Each test gets a fresh IPC namespace, so queue names are fixed constants and need no cleanup.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from mqsentry.abi.linux.capability import CAP_NAMES
from mqsentry.abi.linux.file import O_CREAT, O_EXCL, O_RDWR
from mqsentry.testsuite.libc import Proc
from mqsentry.testsuite.targets.base import Target

#: The default queue: 10 messages of at most 8192 bytes.
MAXMSG = 10
MSGSIZE = 8192
#: gVisor's test message.
MSG = b"A test message."
#: The usual glibc-level name of the queue a test creates.
NAME = "/q"
#: Bytes a queue costs against RLIMIT_MSGQUEUE per message slot besides the payload on x86_64 and
#: arm64 (sizeof(struct msg_msg) + sizeof(struct posix_msg_tree_node)).
SLOT_OVERHEAD = 96
#: A signal number for notifications and interruptions that no harness uses.
SIG = 10  # SIGUSR1
#: A real-time signal (queued, never coalesced) for counting notifications.
RTSIG = 40


def status(qsize: int = 0, notify: int = 0, signo: int = 0, pid: int = 0) -> bytes:
    """The line read() returns on an mq descriptor (ipc/mqueue.c mqueue_read_file)."""
    return b"QSIZE:%-10d NOTIFY:%-5d SIGNO:%-5d NOTIFY_PID:%-6d\n" % (qsize, notify, signo, pid)


def cost(maxmsg: int, msgsize: int) -> int:
    """What a queue is charged against RLIMIT_MSGQUEUE (maxmsg <= MQ_PRIO_MAX)."""
    return maxmsg * (msgsize + SLOT_OVERHEAD)


_uid_base = 50000 + (os.getpid() % 500) * 16 + random.randrange(16) * 8000


def unique_uid() -> int:
    """A uid no other (parallel) test uses: RLIMIT_MSGQUEUE charges are per user machine-wide on
    native, so tests that create queues as non-root must not share a uid."""
    global _uid_base
    _uid_base += 1
    return _uid_base


def require_cap(p: Proc, cap: int) -> None:
    """Skip unless ``p`` holds ``cap``: a native process never has more capabilities than the host's
    bounding set (this host's root may lack CAP_SYS_RESOURCE, for instance)."""
    if not p.capget()[0] >> cap & 1:
        pytest.skip(f"{p.target.name}: the host does not grant {CAP_NAMES[cap]} to test processes")


def user(target: Target, uid: int | None = None, gid: int | None = None, caps: int | None = None,
         groups: tuple[int, ...] = ()) -> Proc:
    """A process of a (by default unique) non-root user."""
    uid = unique_uid() if uid is None else uid
    return Proc(target.spawn(uid=uid, gid=uid if gid is None else gid, groups=groups, caps=caps))


def create(proc: Proc, name: str = NAME, oflag: int = O_RDWR, mode: int = 0o666, attr: Any = None) -> int:
    """Create a new queue with glibc's mq_open (O_CREAT|O_EXCL)."""
    return proc.mq_open(name, oflag | O_CREAT | O_EXCL, mode, attr)


def fill(proc: Proc, fd: int, n: int = MAXMSG, data: bytes = MSG, prio: int = 0) -> None:
    for _ in range(n):
        proc.mq_send(fd, data, prio)


def text(proc: Proc, fd: int) -> bytes:
    """The status line of an mq descriptor, read from offset 0."""
    return proc.pread(fd, 128, 0)




#: O_DIRECTORY differs between the architectures (asm-generic vs arm64 fcntl.h).
O_DIRECTORY = {"amd64": 0o200000, "arm64": 0o40000}


def mountpoint(target: Target, proc: Proc, name: str = "mq") -> str:
    """A fresh directory under the target's scratch directory, with the mqueue fs mounted on it."""
    base = getattr(target, "scratch_dir", "/tmp")
    path = os.path.join(base, name)
    proc.mkdir(path, 0o755)
    proc.mount("none", path, "mqueue", 0, b"")
    return path
