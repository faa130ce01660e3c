"""Linux ABI for the guest: constants and struct layouts with Linux's values (never the host's).

gVisor counterpart: pkg/abi/linux. Modules: ``errno``, ``sysno`` (syscall numbers for amd64 and
arm64), ``ipc``, ``msgqueue``, ``mqueue``, ``signal``, ``time``, ``capability``, ``sched``, ``limits``,
``file``; ``layout`` turns one construct definition into a checked, fast codec.

Constants the compiled hot paths test (``ipc``, ``msgqueue``, ``mqueue``, the open flags of ``file``)
are declared ``Final``: mypyc then folds their values into the extension modules instead of looking
each one up in a module's globals on every call.
"""
