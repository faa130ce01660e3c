"""The README's 32-bit host example runs and returns what its comments say."""

from __future__ import annotations

import os
import re

from mqsentry.testsuite.abi32.builds import REPO


def test_readme_32_bit_example() -> None:
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
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
