"""Credentials and capabilities (gVisor: pkg/sentry/kernel/auth; Linux: kernel/cred.c, security/commoncap.c)."""

from mqsentry.kernel.auth.credentials import Credentials

__all__ = ["Credentials"]
