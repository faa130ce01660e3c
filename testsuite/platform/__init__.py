"""Tests of the platform (kernel/platform): real C programs run natively and under ``mqsentry run``.

Linux counterpart: the programs are their own specification -- each prints a deterministic transcript
and the native run (in a private IPC namespace, ``unshare -i``) is the reference. gVisor counterpart:
test/syscalls runs each test binary natively and in runsc and expects the same results.

These tests are not parametrized by the ``target`` fixture: they always run both.
"""
