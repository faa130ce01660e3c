"""The documents resolve: the porting map, the gVisor divergence codes, and every path the docs cite.

Linux counterpart: none. gVisor counterpart: none (documentation checks).

docs/ ships inside the package (package data), so these checks run from a checkout and from an
installed wheel alike.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import re

import pytest

import mqsentry

ROOT = pathlib.Path(mqsentry.__file__).resolve().parent
DOCS = ROOT / "docs"
SKIP_DIRS = {".git", ".ci", "build", "dist", "__pycache__", ".venv", ".pytest_cache", ".hypothesis", ".mypy_cache",
             ".ruff_cache"}


def _files(*suffixes: str) -> list[pathlib.Path]:
    out = []
    for p in ROOT.rglob("*"):
        rel = p.relative_to(ROOT)
        if p.is_file() and p.suffix in suffixes and not (set(rel.parts) & SKIP_DIRS) \
                and not rel.parts[0].endswith(".egg-info"):
            out.append(p)
    return sorted(out)


def _map_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in (DOCS / "porting-map.md").read_text().splitlines():
        m = re.match(r"\| `(mqsentry[\w.]*)` \| (.*?) \| (.*) \|$", line)
        if m:
            rows.append((m.group(1), m.group(2), m.group(3)))
    return rows


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["mqsentry", *parts])


def test_porting_map_names_only_modules_that_exist() -> None:
    rows = _map_rows()
    assert len(rows) > 50
    missing = [name for name, _, _ in rows if importlib.util.find_spec(name) is None]
    assert missing == [], f"docs/porting-map.md names modules that do not exist (moved or removed?): {missing}"
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "a module is listed twice"


#: Build scripts at the root are not modules of the package.
BUILD_SCRIPTS = {"setup.py"}


def test_porting_map_lists_every_library_module() -> None:
    listed = {name for name, _, _ in _map_rows()}
    library = {_module_name(p) for p in _files(".py")
               if p.relative_to(ROOT).parts[0] not in ("testsuite", "docs", *BUILD_SCRIPTS)}
    missing = sorted(library - listed)
    assert missing == [], ("add a row (module | gVisor file | Linux code, from the module's docstring) to "
                           f"docs/porting-map.md for: {missing}")


def test_porting_map_rows_are_filled() -> None:
    for name, gvisor, linux in _map_rows():
        assert gvisor.strip() and linux.strip() and "TODO" not in gvisor + linux, name


def _divergence_codes() -> dict[str, str]:
    codes = {}
    for line in (DOCS / "gvisor-divergences.md").read_text().splitlines():
        m = re.match(r"\| (D\d+) \| (.*)", line)
        if m:
            codes[m.group(1)] = m.group(2)
    return codes


def test_divergence_table_defines_d1_to_d12() -> None:
    assert sorted(_divergence_codes(), key=lambda c: int(c[1:])) == [f"D{i}" for i in range(1, 13)]


def test_every_divergence_code_cited_is_defined() -> None:
    codes = _divergence_codes()
    cited: dict[str, list[str]] = {}
    for p in _files(".py", ".md"):
        text = p.read_text()
        for m in re.finditer(r"\bD(\d{1,2})(?:-D(\d{1,2}))?\b", text):
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            for i in range(lo, hi + 1):
                cited.setdefault(f"D{i}", []).append(str(p.relative_to(ROOT)))
    undefined = {c: where for c, where in cited.items() if c not in codes}
    assert undefined == {}


#: A path of this repository as the docs write it: a top-level folder, then a file of ours.
_REPO_PATH = re.compile(r"(?<![\w./-])((?:kernel|fs|syscalls|abi|tools|testsuite|docs)/[\w./-]*\w\.(?:py|md))\b")
#: C programs only count under the folders that hold ours (Linux's kernel/*.c and fs/*.c are cited too).
_C_PATH = re.compile(r"(?<![\w./-])((?:testsuite|tools)/[\w./-]*\w\.c)\b")


def _cited_paths() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for p in _files(".py", ".md"):
        if p.suffix == ".py":
            # Docstrings and comments only: strings in code may be data.
            src = p.read_text()
            texts = [ast.get_docstring(n) or "" for n in ast.walk(ast.parse(src))
                     if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
            texts += [line.split("#", 1)[1] for line in src.splitlines() if "#" in line]
            text = "\n".join(texts)
        else:
            text = p.read_text()
        for rx in (_REPO_PATH, _C_PATH):
            for m in rx.finditer(text):
                out.setdefault(m.group(1), set()).add(str(p.relative_to(ROOT)))
    return out


def test_every_repository_path_the_docs_cite_exists() -> None:
    cited = _cited_paths()
    assert "docs/porting-map.md" in cited
    missing = {path: sorted(where) for path, where in cited.items() if not (ROOT / path).exists()}
    assert missing == {}


@pytest.mark.parametrize("pattern", [r"/work/", r"\.\./shared", r"shared/research", r"\blinux-semantics\.md",
                                     r"\binterception\.md", r"(?<![\w-])gvisor\.md", r"\bpeers\.md", r"/home/",
                                     r"/tmp/pkg"])
def test_no_reference_outside_the_repository(pattern: str) -> None:
    bad = []
    this = pathlib.Path(__file__).resolve()
    for p in _files(".py", ".md", ".toml"):
        if p.resolve() == this:
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if re.search(pattern, line):
                bad.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert bad == []


def test_readme_has_exactly_the_two_commands() -> None:
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not installed with the package (its text is the wheel's description)")
    blocks = re.findall(r"```sh\n(.*?)```", readme.read_text(), re.S)
    assert [b.strip() for b in blocks] == ["pip install . && mqsentry demo",
                                          "pip install -e '.[test]' && python -m pytest -n auto"]
