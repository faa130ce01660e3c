"""Syscall handlers (gVisor: pkg/sentry/syscalls). Only ``syscalls.linux`` exists."""
