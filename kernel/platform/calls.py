"""The syscalls the platform's seccomp filter sends to the sentry (x86_64 numbers).

Linux counterpart: arch/x86/entry/syscalls/syscall_64.tbl. gVisor counterpart: the syscall tables of
pkg/sentry/syscalls/linux (here only the message-queue calls are served). A module of constants only,
so the launcher can build the filter before the sentry's kernel is imported.
"""

from __future__ import annotations

#: The served syscalls: msgget..msgctl, mq_open..mq_getsetattr.
SERVED = (68, 69, 70, 71, 240, 241, 242, 243, 244, 245)
#: Syscalls that may change the caller's credentials or IPC namespace: seen, marked, then run by the
#: host (execve, setuid, setgid, setreuid, setregid, setgroups, setresuid, setresgid, setfsuid,
#: setfsgid, capset, unshare, setns, execveat).
OBSERVED = (59, 105, 106, 113, 114, 116, 117, 119, 122, 123, 126, 272, 308, 322)

__all__ = ["OBSERVED", "SERVED"]
