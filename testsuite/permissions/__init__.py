"""The permission matrix: every message-queue operation x caller class x capability x mode, run on the
sentry and on the host kernel (see :mod:`.matrix`)."""
