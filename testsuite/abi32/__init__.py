"""Tests of the 32-bit ABIs (i386, arm, mips o32): layouts against the cross compilers, the compat
handlers, the ipc(2) multiplexer, and the Qiling host."""
