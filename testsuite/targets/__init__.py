"""Test targets: ``sentry`` (an in-process Kernel per test) and ``native`` (the host kernel)."""
