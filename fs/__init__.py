"""Filesystems of the sentry (gVisor: pkg/sentry/fsimpl and pkg/sentry/vfs; Linux: fs/ and ipc/mqueue.c): ``fs.mqfs`` (the mqueue
filesystem) and ``fs.proc`` (the /proc files that IPC exposes)."""
