"""Guest memory of a real process: process_vm_readv/writev by the calling thread's TID.

Linux counterpart: mm/process_vm_access.c (``process_vm_rw``), the kernel side of what a ptrace- or
seccomp-based supervisor uses to reach a tracee's memory. gVisor counterpart: the platform
``AddressSpace`` of pkg/sentry/platform and ``usermem.IO``; the systrap platform copies through
the stub's shared memory instead.

An adapter satisfies kernel/memory.py's protocol (``read(addr, n) -> bytes``, ``write(addr, data)``).
The sentry keeps one memory object per thread group (``ThreadGroup.mm``), but the process to reach is
the *calling thread's*: a group leader may already be a zombie with no mm while its threads still run.
So the adapter reads the TID from the current call context (:func:`context`), which the platform
sets before it runs a syscall. Calls run as greenlets on the loop's OS thread (parking.py): each
greenlet has its own context, installed with :func:`set_context` whenever it is switched back in, and
all contexts of one OS thread share its scratch buffer (a transfer never spans a switch).

TOCTOU (docs/platform-rules.md §4, pitfall 5): the TID in a notification may die and be reused by
another process. After the first successful read of a call, and before its first write, the adapter
checks that the notification is still valid: if it is, the bytes came from (or go to) the right
process. A call that slept is checked again at its next access (the platform re-arms ``validate``
when it wakes). Short transfers and errors raise :class:`MemoryFault`, which the sentry turns into
EFAULT exactly where Linux would fault.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Callable
from typing import Any

from mqsentry.kernel.memory import MemoryFault

_libc = ctypes.CDLL(None, use_errno=True)


# Both calls take (pid, local iovec*, 1, remote iovec*, 1, 0). Each iovec is packed into a bytes
# object (ctypes passes a bytes argument as a pointer to its data), and the local side is a scratch
# buffer per OS thread: cheaper from Python than building ctypes structures and buffers per call.
_ARGS = (ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong)
_readv = _libc.process_vm_readv
_readv.restype = ctypes.c_ssize_t
_readv.argtypes = _ARGS
_writev = _libc.process_vm_writev
_writev.restype = ctypes.c_ssize_t
_writev.argtypes = _ARGS
_IOV = struct.Struct("=QQ").pack
# A large read lands directly in the bytes object the sentry keeps (issue 9: a served 512 MiB msgsnd
# must hold about one copy beyond the queue's, not a ctypes buffer plus a bytes copy of it). CPython
# only: a fresh, unshared bytes object from PyBytes_FromStringAndSize(NULL, n) is filled in place at
# its ob_sval (the last byte of the fixed header is the first of the data).
_new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
_new_bytes.restype = ctypes.py_object
_new_bytes.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)
_BYTES_DATA = bytes.__basicsize__ - 1
#: Scratch size per OS thread; larger transfers get a buffer of their own.
SCRATCH = 1 << 16


class CallContext:
    """The notification being served by one OS thread: ``tid`` (host TID), ``nid`` (its id), ``nr``,
    ``validate`` (checks the id, or None once checked for this call), ``post`` (actions to run after
    the SEND; None outside a served call), ``parked`` (the loop's records of this call's sleeps, None
    if it has not slept), ``traced`` (a reply hook already showed the call to ``Kernel.tracer`` with
    the result the target got) and a scratch buffer for memory transfers. Used only by its own OS
    thread (and, on it, by the greenlet that installed it), so unguarded. A plain object: attribute
    access on a ``threading.local`` costs ~0.2 µs each, so the thread-local is consulted once per
    access path (:func:`context`)."""

    __slots__ = ("tid", "nid", "nr", "validate", "post", "parked", "traced", "scratch", "scratch_addr", "scratch_view")

    def __init__(self, share: CallContext | None = None) -> None:
        self.tid = 0
        self.nid = 0
        self.nr = 0
        self.validate: Callable[[int], bool] | None = None
        self.post: list[Callable[[], None]] | None = None
        self.parked: list[Any] | None = None
        self.traced = False
        if share is not None:
            # Another greenlet's context on the same OS thread: one scratch buffer per thread (a
            # thousand parked calls must not hold a thousand 64 KiB buffers).
            scratch = share.scratch
        else:
            scratch = ctypes.create_string_buffer(SCRATCH)
        self.scratch: ctypes.Array[ctypes.c_char] = scratch
        self.scratch_addr = ctypes.addressof(scratch)
        self.scratch_view = memoryview(scratch).cast("B")


_tls = threading.local()


def context() -> CallContext:
    """This OS thread's call context (created on first use)."""
    try:
        return _tls.ctx  # type: ignore[no-any-return]
    except AttributeError:
        ctx = _tls.ctx = CallContext()
        return ctx


def set_context(ctx: CallContext) -> None:
    """Install ``ctx`` as this OS thread's call context (a greenlet switched back in restores its own)."""
    _tls.ctx = ctx


def new_context() -> CallContext:
    """A fresh call context for another greenlet of this OS thread, sharing the thread's scratch buffer."""
    return CallContext(context())


class ProcessMemory:
    """The memory of one host thread group, reached through whichever of its threads is calling.

    Stateless apart from ``tgid`` (immutable; the fallback target when no call context is set, e.g.
    for work done on behalf of the process outside a syscall). Safe to use from several OS threads.
    """

    __slots__ = ("tgid",)

    def __init__(self, tgid: int) -> None:
        self.tgid = tgid

    def read(self, addr: int, n: int) -> bytes:
        ctx = context()
        tid = ctx.tid or self.tgid
        if n <= SCRATCH:
            got = _readv(tid, _IOV(ctx.scratch_addr, n), 1, _IOV(addr, n), 1, 0)
            data = ctx.scratch_view[:n].tobytes() if got == n else b""
        else:
            data = _new_bytes(None, n)
            got = _readv(tid, _IOV(id(data) + _BYTES_DATA, n), 1, _IOV(addr, n), 1, 0)
        if got != n:
            raise MemoryFault(f"process_vm_readv({tid}, {addr:#x}, {n}) = {got}")
        check = ctx.validate
        if check is not None:
            if not check(ctx.nid):
                # Stays armed: every later access of this call fails too (nothing is written to a
                # process that may not be the caller, e.g. msgrcv's mtype after a failed text copy).
                raise MemoryFault("the calling thread went away (notification no longer valid)")
            ctx.validate = None
        return data

    def write(self, addr: int, data: bytes) -> None:
        n = len(data)
        ctx = context()
        tid = ctx.tid or self.tgid
        check = ctx.validate
        if check is not None:
            if not check(ctx.nid):
                raise MemoryFault("the calling thread went away (notification no longer valid)")
            ctx.validate = None
        if n <= SCRATCH:
            ctx.scratch_view[:n] = data
            local = ctx.scratch_addr
        else:
            # Written from the caller's own bytes (no staging copy); kept alive by ``data``.
            if not isinstance(data, bytes):
                data = bytes(data)
            local = id(data) + _BYTES_DATA
        got = _writev(tid, _IOV(local, n), 1, _IOV(addr, n), 1, 0)
        if got != n:
            raise MemoryFault(f"process_vm_writev({tid}, {addr:#x}, {n}) = {got}")

    def __repr__(self) -> str:
        return f"<ProcessMemory tgid={self.tgid}>"


__all__ = ["ProcessMemory", "CallContext", "context", "new_context", "set_context"]
