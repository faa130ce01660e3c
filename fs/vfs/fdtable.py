"""Per-process file descriptor tables.

Linux counterpart: ``struct files_struct`` / ``struct fdtable`` (fs/file.c: ``alloc_fd``,
``fd_install``, ``close_fd``, ``do_dup2``, ``dup_fd``, ``close_files``). gVisor counterpart:
pkg/sentry/kernel/fd_table.go (``FDTable``: ``NewFDFrom``, ``NewFDAt``, ``Remove``, ``Fork``,
``RemoveIf``).

Threads of a process share one table; fork copies it (the copies refer to the same descriptions,
each taking a reference). The table of a task is ``t.fd_table`` (see mqsentry.fs.vfs.context).

Allocation is split into :meth:`FDTable.reserve` and :meth:`FDTable.fill` so a syscall can take its fd
before doing the work that may create objects, as Linux does (``get_unused_fd_flags`` before
``do_filp_open``; ``mq_open`` likewise): EMFILE is then reported before anything is created.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mqsentry.abi.linux.errno import EBADF, EMFILE
from mqsentry.abi.linux.file import FD_CLOEXEC
from mqsentry.abi.linux.limits import RLIMIT_NOFILE
from mqsentry.fs.vfs.file import FileDescription
from mqsentry.kernel.errors import SysError

if TYPE_CHECKING:
    from mqsentry.kernel.context import TaskContext

#: Placeholder of a reserved, not yet filled slot.
_RESERVED: tuple[None, bool] = (None, False)


class FDTable:
    """One process's fd table (Linux ``files_struct``).

    ``mu`` guards ``_fds`` (fd -> (description or None while reserved, close-on-exec)), ``files``
    and ``_hint`` (every fd below it is in use). Descriptions are flushed and released *after* ``mu``
    is dropped, so file operations never run under it. Lock order: ``FDTable.mu`` ->
    ``FileDescription.mu`` (incref only).

    ``files`` mirrors the filled slots of ``_fds`` (fd -> description): it is written only under
    ``mu``, together with ``_fds``, and read without it by hot syscalls (``files.get(fd)`` is one
    atomic dict read, like :meth:`get` but without a call or a tuple; None means EBADF). Callers
    must treat it as read-only.
    """

    __slots__ = ("mu", "_fds", "files", "_hint")

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self._fds: dict[int, tuple[FileDescription | None, bool]] = {}
        self.files: dict[int, FileDescription] = {}
        self._hint = 0

    # -- allocation ---------------------------------------------------------------------------------------
    def reserve(self, t: TaskContext, cloexec: bool = False, minfd: int = 0) -> int:
        """``get_unused_fd_flags``/``alloc_fd``: claim the lowest free fd >= ``minfd``; EMFILE at or
        above the process's RLIMIT_NOFILE soft limit. Fill it with :meth:`fill` or give it back with
        :meth:`unreserve`."""
        limit = t.tg.rlimits[RLIMIT_NOFILE][0]
        with self.mu:
            fds = self._fds
            fd = minfd if minfd > self._hint else self._hint
            while fd in fds:
                fd += 1
            if fd >= limit:
                raise SysError(EMFILE)
            fds[fd] = (None, cloexec)
            if minfd <= self._hint:
                self._hint = fd + 1
        return fd

    def fill(self, fd: int, desc: FileDescription) -> None:
        """``fd_install``: publish ``desc`` in a reserved slot; the table takes its own reference."""
        desc.incref()
        with self.mu:
            _, cloexec = self._fds[fd]
            self._fds[fd] = (desc, cloexec)
            self.files[fd] = desc

    def unreserve(self, fd: int) -> None:
        """``put_unused_fd``: give back a reserved slot that was never filled."""
        with self.mu:
            if self._fds.get(fd, _RESERVED)[0] is None:
                self._fds.pop(fd, None)
                if fd < self._hint:
                    self._hint = fd

    def install(self, t: TaskContext, desc: FileDescription, cloexec: bool, minfd: int = 0) -> int:
        """Install ``desc`` at the lowest free fd >= ``minfd`` (EMFILE at RLIMIT_NOFILE); the table
        takes its own reference (the caller keeps and later drops its own). Linux's ``alloc_fd`` then
        ``fd_install``: until filled, the slot is taken but looks closed to every lookup."""
        fd = self.reserve(t, cloexec, minfd)
        self.fill(fd, desc)
        return fd

    def install_at(self, fd: int, desc: FileDescription, cloexec: bool) -> FileDescription | None:
        """``do_dup2``: put ``desc`` at ``fd`` (the caller checked the limit); returns the description
        that was there, for the caller to flush and decref outside the lock. Taking a reference for
        the new entry is done here."""
        desc.incref()
        with self.mu:
            old = self._fds.get(fd)
            self._fds[fd] = (desc, cloexec)
            self.files[fd] = desc
            if fd == self._hint:
                self._hint = fd + 1
        return old[0] if old is not None else None

    # -- lookup ------------------------------------------------------------------------------------------------
    def get(self, fd: int) -> FileDescription:
        """The description at ``fd`` or SysError(EBADF)."""
        desc = self.files.get(fd)
        if desc is None:
            raise SysError(EBADF)
        return desc

    def get_ref(self, fd: int) -> FileDescription:
        """``fget``: like :meth:`get` but with a reference the caller drops with ``decref``."""
        with self.mu:
            ent = self._fds.get(fd)
            if ent is None or ent[0] is None:
                raise SysError(EBADF)
            ent[0].incref()
            return ent[0]

    def get_flags(self, fd: int) -> int:
        """FD_CLOEXEC if set on ``fd``; SysError(EBADF)."""
        ent = self._fds.get(fd)
        if ent is None or ent[0] is None:
            raise SysError(EBADF)
        return FD_CLOEXEC if ent[1] else 0

    def set_flags(self, fd: int, flags: int) -> None:
        """F_SETFD: only FD_CLOEXEC is meaningful."""
        with self.mu:
            ent = self._fds.get(fd)
            if ent is None or ent[0] is None:
                raise SysError(EBADF)
            self._fds[fd] = (ent[0], bool(flags & FD_CLOEXEC))

    def fds(self) -> list[int]:
        """The open fds, ascending (diagnostics and tests)."""
        with self.mu:
            return sorted(fd for fd, (d, _) in self._fds.items() if d is not None)

    def __len__(self) -> int:
        return len(self._fds)

    def slots_locked(self) -> dict[int, tuple[FileDescription | None, bool]]:
        """A copy of every slot, fd -> (description, or None while reserved; close-on-exec); caller
        holds ``mu`` (consistency checkers)."""
        return dict(self._fds)

    @property
    def hint(self) -> int:
        """The lowest fd that may be free (every fd below it is in use); read under ``mu``."""
        return self._hint

    # -- removal -----------------------------------------------------------------------------------------------
    def remove(self, fd: int) -> FileDescription:
        """``file_close_fd``: take ``fd`` out of the table (EBADF); the caller flushes and decrefs."""
        with self.mu:
            ent = self._fds.get(fd)
            if ent is None or ent[0] is None:
                raise SysError(EBADF)
            del self._fds[fd]
            del self.files[fd]
            if fd < self._hint:
                self._hint = fd
        return ent[0]

    def close(self, t: TaskContext, fd: int) -> None:
        """close(2): remove ``fd`` (EBADF), then ``flush(t)`` and drop the table's reference."""
        desc = self.remove(fd)
        try:
            desc.flush(t)
        finally:
            desc.decref()

    def close_all(self, t: TaskContext) -> None:
        """Process exit (``close_files``): close every fd in ascending order."""
        with self.mu:
            ents = sorted(self._fds.items())
            self._fds = {}
            self.files = {}
            self._hint = 0
        for _, (desc, _) in ents:
            if desc is None:
                continue
            try:
                desc.flush(t)
            finally:
                desc.decref()

    def close_on_exec(self, t: TaskContext) -> None:
        """execve's ``do_close_on_exec``: close every fd marked close-on-exec."""
        with self.mu:
            doomed = [fd for fd, (d, c) in self._fds.items() if c and d is not None]
        for fd in doomed:
            try:
                self.close(t, fd)
            except SysError:
                pass

    # -- fork ---------------------------------------------------------------------------------------------------
    def fork(self) -> FDTable:
        """``dup_fd``: a copy sharing every description (each gains a reference)."""
        new = FDTable()
        with self.mu:
            for fd, (desc, cloexec) in self._fds.items():
                if desc is None:
                    continue  # a slot being filled by another thread is not inherited
                desc.incref()
                new._fds[fd] = (desc, cloexec)
                new.files[fd] = desc
        hint = 0
        while hint in new._fds:
            hint += 1
        new._hint = hint
        return new


__all__ = ["FDTable"]
