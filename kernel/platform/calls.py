"""The syscalls the platform's seccomp filter sends to the sentry (x86_64 and i386 numbers).

Linux counterpart: arch/x86/entry/syscalls/syscall_64.tbl. gVisor counterpart: the syscall tables of
pkg/sentry/syscalls/linux (here only the message-queue calls are served). A module of constants only,
so the launcher can build the filter before the sentry's kernel is imported.
"""

from __future__ import annotations

from mqsentry.abi.linux import sysno

#: The served syscalls: msgget..msgctl, mq_open..mq_getsetattr.
SERVED = (68, 69, 70, 71, 240, 241, 242, 243, 244, 245)
#: Syscalls that may change the caller's credentials or IPC namespace: seen, marked, then run by the
#: host (execve, setuid, setgid, setreuid, setregid, setgroups, setresuid, setresgid, setfsuid,
#: setfsgid, capset, unshare, setns, execveat).
OBSERVED = (59, 105, 106, 113, 114, 116, 117, 119, 122, 123, 126, 272, 308, 322)

# i386 programs (AUDIT_ARCH_I386 notifications): their own numbers, served by the i386 table (compat
# structures, the ipc(2) multiplexer, the _time64 calls). The platform's hooks (``prepare``,
# ``replies``) are keyed by x86_64 number, so an i386 call reaches them under the x86_64 number of the
# same call. x32 calls are not in the filter's lists: they keep ENOSYS.
_I386_SERVED_NAMES = ("msgget", "msgsnd", "msgrcv", "msgctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend",
                      "mq_timedreceive", "mq_notify", "mq_getsetattr", "mq_timedsend_time64",
                      "mq_timedreceive_time64")
SERVED_I386 = tuple(sysno.I386[name] for name in _I386_SERVED_NAMES)
#: The credential- and namespace-changing calls of i386, 16- and 32-bit id versions alike.
_I386_OBSERVED_NAMES = ("execve", "setuid", "setgid", "setreuid", "setregid", "setgroups", "setresuid", "setresgid",
                        "setfsuid", "setfsgid", "setuid32", "setgid32", "setreuid32", "setregid32", "setgroups32",
                        "setresuid32", "setresgid32", "setfsuid32", "setfsgid32", "capset", "unshare", "setns",
                        "execveat")
OBSERVED_I386 = tuple(sysno.I386[name] for name in _I386_OBSERVED_NAMES)
#: i386 observed number -> the x86_64 number of the same call (the 16- and 32-bit id versions alike).
I386_OBSERVED_AS = {sysno.I386[name]: sysno.AMD64[name.removesuffix("32")] for name in _I386_OBSERVED_NAMES}
#: i386 served number -> the x86_64 number of the same call, for the hooks (ipc(2) has none: -1).
I386_HOOK_NR = {sysno.I386[name]: sysno.AMD64.get(name.removesuffix("_time64"), -1) for name in _I386_SERVED_NAMES}

#: mount(2) and fsopen(2): sent to the sentry only to pick out the mqueue filesystem (mqmount.py);
#: every other use continues natively.
MOUNTS = (sysno.AMD64["mount"], sysno.AMD64["fsopen"])
MOUNTS_I386 = (sysno.I386["mount"], sysno.I386["fsopen"])
I386_HOOK_NR.update({sysno.I386[name]: sysno.AMD64[name] for name in ("mount", "fsopen")})

__all__ = ["I386_HOOK_NR", "I386_OBSERVED_AS", "MOUNTS", "MOUNTS_I386", "OBSERVED", "OBSERVED_I386", "SERVED",
           "SERVED_I386"]
