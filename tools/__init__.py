"""Command-line tools around the embedded sentry: ``mqsentry demo``, ``mqsentry bench`` and the
strace-like syscall formatter (:mod:`mqsentry.tools.strace`).

Linux counterpart: strace(1) and the ad-hoc IPC benchmarks people run with ipcs/ipcmk. gVisor
counterpart: runsc's ``--strace`` flag (pkg/sentry/strace) and the IPC benchmarks under test/perf.
"""
