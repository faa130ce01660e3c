"""Hosts that embed the sentry in an emulator (the sentry serves the guest's message-queue calls).

Linux counterpart: none (the syscall entry of an architecture). gVisor counterpart: the platforms of
pkg/sentry/platform, which hand a stopped task's syscall to the sentry. ``mqsentry.tools.hosts.qiling``
installs the sentry into a Qiling instance.
"""
