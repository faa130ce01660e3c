"""The README's 32-bit host example runs and returns what its comments say."""

from __future__ import annotations

import importlib.metadata
import os
import re

import pytest

from mqsentry.testsuite.abi32.builds import REPO


def _readme() -> str:
    """The README: from the checkout, or (installed from a wheel) the package's description, which is
    the README's text."""
    path = os.path.join(REPO, "README.md")
    if os.path.exists(path):
        with open(path) as f:
            return f.read()
    try:
        text = importlib.metadata.metadata("mqsentry").get_payload()  # type: ignore[attr-defined]
    except importlib.metadata.PackageNotFoundError:
        text = None
    if not text:
        pytest.skip("README.md is neither in the checkout nor in the installed package's metadata")
    return str(text)


def test_readme_32_bit_example() -> None:
    text = _readme()
    section = text[text.index("## 32-bit guests and emulators"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    lines = code.group(1).splitlines()
    results: list[tuple[str, int]] = []
    env: dict[str, object] = {}
    src = []
    for line in lines:
        m = re.match(r"^(t\.syscall\(.*\))\s+# -> (-?\d+)", line)
        if m:
            src.append(f"_r.append(({m.group(1)!r}, {m.group(1)}, {m.group(2)}))")
        else:
            src.append(line)
    env["_r"] = results
    exec("\n".join(src), env)
    assert results, "the example lost its '# -> value' comments"
    for call, got, want in results:  # type: ignore[misc]
        assert got == want, call
    t = env["t"]
    assert t.mm.read(0x304, 2) == b"hi"  # type: ignore[attr-defined]
