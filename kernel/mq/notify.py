"""mq_notify registrations: what is recorded, how it fires and how it is removed.

Linux counterpart: ipc/mqueue.c ``do_mq_notify`` (the recorded fields), ``__do_notify`` (firing) and
``remove_notification``. gVisor counterpart: pkg/sentry/kernel/mq ``Subscriber`` (never populated in
HEAD) and PR 6458's ``Queue.Notify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mqsentry.abi.linux.mqueue import NOTIFY_REMOVED, NOTIFY_WOKENUP
from mqsentry.abi.linux.signal import SI_MESGQ, SIGEV_SIGNAL, SIGEV_THREAD
from mqsentry.kernel.auth.user_namespace import ROOT_USER_NAMESPACE, UserNamespace

if TYPE_CHECKING:
    from mqsentry.kernel.context import KernelContext, TaskContext


class CookieSink(Protocol):
    """The netlink socket a SIGEV_THREAD registration writes its 32-byte cookie into."""

    def deliver(self, data: bytes) -> None: ...

    def decref(self) -> None: ...


@dataclass(slots=True)
class Notification:
    """One registration (Linux ``notify_owner`` + ``notify`` + ``notify_sock``/``notify_cookie``).

    Immutable once recorded; owned by the queue's ``mu``. ``sock`` holds a reference to the netlink
    socket description, dropped when the cookie is finally delivered (fire or removal).
    """

    owner_tgid: int
    notify: int
    signo: int = 0
    value: int = 0
    sock: Any = None
    cookie: bytes = b""
    #: ``notify_user_ns``: the registering task's user namespace (si_uid is shown in it).
    user_ns: UserNamespace = ROOT_USER_NAMESPACE

    def fire(self, kernel: KernelContext, sender: TaskContext) -> None:
        """``__do_notify`` for a message that made the queue non-empty (caller holds the queue lock
        and has already cleared the registration: it is one-shot)."""
        kind = self.notify
        if kind == SIGEV_SIGNAL:
            if not self.signo:
                return  # accepted by mq_notify, but Linux never sends signal 0
            # Process-directed and exempt from kill's permission checks (do_send_sig_info). If the
            # owner is gone, the registration is consumed silently. si_uid: the sender's real uid in
            # the registering task's user namespace (from_kuid_munged); the delivery then maps it
            # on from the sender's namespace to the owner's, as send_signal_locked does.
            creds = sender.creds
            kernel.send_process_signal(self.owner_tgid, self.signo, SI_MESGQ, sender.tg.tgid,
                                       self.user_ns.map_from_kuid_munged(creds.ruid), self.value,
                                       sender_ns=creds.user_ns)
        elif kind == SIGEV_THREAD:
            self._send_cookie(NOTIFY_WOKENUP)

    def removed(self) -> None:
        """``remove_notification``: a SIGEV_THREAD owner learns that its registration is gone."""
        if self.notify == SIGEV_THREAD:
            self._send_cookie(NOTIFY_REMOVED)

    def _send_cookie(self, code: int) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        try:
            sock.deliver(self.cookie[:31] + bytes((code,)))
        finally:
            sock.decref()


__all__ = ["Notification", "CookieSink"]
