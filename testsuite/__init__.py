"""The conformance suite (gVisor: test/syscalls/linux), run against the sentry and the host kernel.

``mqsentry.testsuite.targets`` holds the two targets behind one task-handle interface; ``mqsentry.testsuite.libc`` is a
small libc-like layer over a task handle; test modules live in ``testsuite/msgqueue`` (SysV),
``testsuite/mq`` (POSIX) and ``testsuite/kernel`` (credentials, signals, dispatch).
"""
