"""Debian's cross compilers, as the 32-bit ABI tests use them: which exist, and constants from C.

Constants come from compiling (never running) a translation unit to assembly and reading back an
array of ``unsigned int`` values, so no emulator is needed to learn a target's sizes and offsets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

#: Kernel(arch=...) name -> the compiler that builds for it.
COMPILERS: dict[str, str] = {
    "i386": "i686-linux-gnu-gcc",
    "arm": "arm-linux-gnueabi-gcc",
    "mips": "mips-linux-gnu-gcc",
    "mipsel": "mipsel-linux-gnu-gcc",
    "amd64": "x86_64-linux-gnu-gcc",
    "arm64": "aarch64-linux-gnu-gcc",
}

_DATA = re.compile(r"^\s*\.(?:long|word|4byte|int)\s+(-?\w+)", re.MULTILINE)


def compiler(arch: str) -> str | None:
    """The compiler's path, or None when it is not installed."""
    return shutil.which(COMPILERS[arch])


def missing_reason(arch: str) -> str:
    return (f"{COMPILERS[arch]} is not installed (apt-get install gcc-{COMPILERS[arch][:-4]}); "
            f"the {arch} layouts cannot be checked")


def c_constants(arch: str, headers: list[str], exprs: list[str], defines: str = "") -> list[int]:
    """The values of the C expressions ``exprs`` (each an unsigned int) on ``arch``."""
    cc = compiler(arch)
    assert cc is not None
    src = defines + "".join(f"#include <{h}>\n" for h in headers)
    src += "#include <stddef.h>\nconst unsigned int mqsentry_values[] = {\n"
    src += "".join(f"  (unsigned int)({e}),\n" for e in exprs) + "};\n"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "probe.c")
        with open(path, "w") as f:
            f.write(src)
        r = subprocess.run([cc, "-S", "-O0", "-o", "-", path], capture_output=True, text=True)
    if r.returncode:
        raise AssertionError(f"{cc} failed:\n{r.stderr}\n{src}")
    asm = r.stdout
    values = [int(v, 0) for v in _DATA.findall(asm)]
    assert len(values) == len(exprs), (values, exprs)
    return values


def c_defines(arch: str, header: str) -> dict[str, str]:
    """``#define NAME value`` pairs the preprocessor sees after including ``header``."""
    cc = compiler(arch)
    assert cc is not None
    out = subprocess.run([cc, "-E", "-dM", "-"], input=f"#include <{header}>\n", check=True,
                         capture_output=True, text=True).stdout
    defs: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] == "#define":
            defs[parts[1]] = parts[2]
    return defs
