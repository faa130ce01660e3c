"""Start-up time of ``mqsentry run``: the wall time of ``mqsentry run /bin/true`` against the host.

Linux counterpart: none (a measurement). gVisor counterpart: the start-up benchmarks of test/benchmarks
(``runsc do true``), which compare a sandboxed run of a trivial program with a native one.

Each repetition starts a fresh interpreter (with bytecode cached, as for an installed package)
running ``python -m mqsentry run /bin/true`` (the whole
cost a user sees: interpreter, imports, sentry, launcher, FUSE mounts, exit) and, for the baseline,
``/bin/true`` itself; the medians are reported. The target is <= 0.15 s median (issue 10).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

#: The start-up target of ``mqsentry run /bin/true`` in seconds (median).
TARGET_S = 0.15


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _wall(cmd: list[str], cpu: list[float] | None = None, env: dict[str, str] | None = None) -> float:
    c0 = _cpu()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       check=False, env=env)
    took = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(_cpu() - c0)  # the run and every process it waited for (launcher, program)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")
    return took


def measure(repeat: int = 11) -> tuple[float, float, list[float], float]:
    """(median seconds of ``mqsentry run /bin/true``, median of ``/bin/true``, all sentry samples,
    median CPU seconds of a run -- the figure that does not depend on how loaded the machine is)."""
    true = "/bin/true" if os.path.exists("/bin/true") else "true"
    cmd = [sys.executable, "-m", "mqsentry", "run", true]
    with tempfile.TemporaryDirectory(prefix="mqsentry-pyc-") as cache:
        # Bytecode as an installed package has it (pip compiles it at install time), even where the
        # environment says PYTHONDONTWRITEBYTECODE: compiling every module at each start costs ~1 s.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        _wall(cmd, env=env)  # warm the page cache and write the bytecode once
        cpu: list[float] = []
        sentry = [_wall(cmd, cpu, env) for _ in range(repeat)]
    native = [_wall([true]) for _ in range(repeat)]
    return statistics.median(sentry), statistics.median(native), sentry, statistics.median(cpu)


def report(repeat: int = 11) -> str:
    """One line for ``mqsentry bench``."""
    med, native, samples, cpu = measure(repeat)
    verdict = "meets" if med <= TARGET_S else "misses"
    return (f"start-up: mqsentry run /bin/true {med:.3f} s median of {repeat} (min {min(samples):.3f}, "
            f"max {max(samples):.3f}; CPU {cpu:.3f} s; /bin/true alone {native * 1000:.1f} ms); {verdict} the "
            f"{TARGET_S:.2f} s target")


__all__ = ["TARGET_S", "measure", "report"]
