"""Syscall handlers (gVisor: pkg/sentry/syscalls; Linux: the SYSCALL_DEFINEs).

Only ``mqsentry.syscalls.linux`` exists."""
