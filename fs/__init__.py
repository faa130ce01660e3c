"""Filesystems of the sentry: ``fs.vfs`` (the generic layer), ``fs.mqfs`` (the mqueue filesystem) and
``fs.proc`` (the /proc files that IPC exposes).

Linux counterpart: fs/ and ipc/mqueue.c. gVisor counterpart: pkg/sentry/vfs and pkg/sentry/fsimpl.
"""
