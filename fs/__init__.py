"""Filesystems of the sentry: ``mqsentry.fs.vfs`` (the generic layer), ``mqsentry.fs.mqfs`` (the mqueue filesystem) and
``mqsentry.fs.proc`` (the /proc files that IPC exposes).

Linux counterpart: fs/ and ipc/mqueue.c. gVisor counterpart: pkg/sentry/vfs and pkg/sentry/fsimpl.
"""
