"""Credentials, capabilities and user namespaces (gVisor: pkg/sentry/kernel/auth; Linux: kernel/cred.c,
security/commoncap.c, kernel/user_namespace.c)."""

from mqsentry.kernel.auth.credentials import Credentials
from mqsentry.kernel.auth.user_namespace import NO_ID, OVERFLOW_ID, ROOT_USER_NAMESPACE, UserNamespace

__all__ = ["Credentials", "UserNamespace", "ROOT_USER_NAMESPACE", "NO_ID", "OVERFLOW_ID"]
