"""Differential testing of the sentry against the host kernel.

Linux counterpart: none (Linux is the oracle here). gVisor counterpart: the idea of gVisor's
``test/syscalls`` runner, which runs the same test binary natively and under runsc, pushed one step
further: instead of hand-written cases, hypothesis generates sequences of SysV and POSIX message-queue
operations by several actors (processes and threads with different credentials), runs each sequence
in lockstep on a fresh sentry target and a fresh native target, and compares every observable result.

Modules:

* :mod:`.world` -- one target's side of a run: actors, their scratch memory and descriptor tables, and
  the normalisation of pids (to actor labels), descriptor numbers and time stamps.
* :mod:`.ops` -- the operations (small frozen dataclasses whose ``repr`` is Python code).
* :mod:`.runner` -- lockstep execution, comparison, and the printing of a divergence as a
  regression test.
* :mod:`.strategies` -- the hypothesis strategies that generate actors and sequences.
"""
