"""Fixed-layout ABI structs: one construct definition, a size check, and a fast ``struct`` codec.

Linux counterpart: none (C gets this from the compiler). gVisor counterpart: the ``+marshal`` code
generator (tools/go_marshal), which derives MarshalBytes/UnmarshalBytes from one Go struct definition.

Each ABI struct is declared once with construct (readable, self-documenting, asserted against the C
``sizeof``). Hot paths must not pay construct's per-call interpretation cost, so :class:`Layout` also
derives a flat ``struct.Struct`` format from the very same definition and exposes ``pack``/``unpack``
over the flattened field tuple. Nothing is declared twice. A struct is little- or big-endian as its
fields say (big-endian for mips guests), never a mix.
"""

from __future__ import annotations

import struct
from typing import Any

import construct as cs


def _flatten(con: cs.Construct, prefix: str, fmt: list[str], names: list[str], order: list[str]) -> None:
    """Append the struct format characters and dotted field names of ``con``; ``order`` collects the
    byte order of its fields (one struct is all little- or all big-endian: a guest has one order)."""
    if isinstance(con, cs.Renamed):
        name = f"{prefix}{con.name}" if con.name else prefix.rstrip(".")
        _flatten(con.subcon, name + "." if isinstance(con.subcon, cs.Struct) else name, fmt, names, order)
        return
    if isinstance(con, cs.Struct):
        for sub in con.subcons:
            _flatten(sub, prefix, fmt, names, order)
        return
    if isinstance(con, cs.FormatField):
        if con.fmtstr[0] not in "<>" or (order and order[0] != con.fmtstr[0]):
            raise TypeError(f"{prefix}: fields must share one explicit byte order, got {con.fmtstr!r}")
        order[:1] = con.fmtstr[0]
        fmt.append(con.fmtstr[1:])
        names.append(prefix)
        return
    if isinstance(con, cs.Padded) and isinstance(con.subcon, type(cs.Pass)):
        fmt.append(f"{con.length}x")
        return
    if isinstance(con, cs.Bytes):
        fmt.append(f"{con.length}s")
        names.append(prefix)
        return
    if isinstance(con, cs.Array) and isinstance(con.count, int):
        for i in range(con.count):
            _flatten(con.subcon, f"{prefix}[{i}]", fmt, names, order)
        return
    raise TypeError(f"{prefix}: cannot derive a struct format for {type(con).__name__}")


class Layout:
    """An ABI struct: its construct definition (``con``), compiled form, and flat struct codec.

    ``fields`` lists the flattened field names (nested structs as ``perm.uid``), in the order of the
    tuples that :meth:`pack` takes and :meth:`unpack` returns.
    """

    __slots__ = ("name", "con", "compiled", "codec", "size", "fields", "pack", "unpack", "pack_into",
                 "unpack_from", "_index", "_offsets")

    def __init__(self, name: str, con: cs.Struct, size: int) -> None:
        fmt: list[str] = []
        fields: list[str] = []
        order: list[str] = []
        _flatten(con, "", fmt, fields, order)
        codec = struct.Struct((order[0] if order else "<") + "".join(fmt))
        if con.sizeof() != size or codec.size != size:
            raise AssertionError(f"{name}: construct size {con.sizeof()}, struct size {codec.size}, "
                                 f"C sizeof {size}")
        self.name = name
        self.con = con
        self.compiled = con.compile()
        self.codec = codec
        self.size = size
        self.fields = tuple(fields)
        self.pack = codec.pack
        self.unpack = codec.unpack
        self.pack_into = codec.pack_into
        self.unpack_from = codec.unpack_from
        self._index = {f: i for i, f in enumerate(fields)}
        self._offsets = _field_offsets(codec.format, self.fields)

    def index(self, field: str) -> int:
        """Position of a flattened field in the pack/unpack tuple."""
        return self._index[field]

    def offsetof(self, field: str) -> int:
        """C ``offsetof`` of a flattened field."""
        return self._offsets[field][0]

    def sizeof(self, field: str) -> int:
        """C ``sizeof`` of a flattened field."""
        return self._offsets[field][1]

    def parse(self, data: bytes) -> Any:
        """Parse with the compiled construct (a Container with attribute access); for cold paths."""
        return self.compiled.parse(data)

    def build(self, **values: Any) -> bytes:
        """Build with construct from keyword values; for cold paths and tests."""
        return bytes(self.compiled.build(values))

    def to_dict(self, data: bytes) -> dict[str, Any]:
        """Unpack ``data`` into a flat ``{dotted_field: value}`` dict."""
        return dict(zip(self.fields, self.codec.unpack(data)))

    def from_dict(self, values: dict[str, Any]) -> bytes:
        """Pack a flat ``{dotted_field: value}`` dict; missing fields are zero (or empty bytes)."""
        out = []
        for f, ch in zip(self.fields, _field_kinds(self.codec.format)):
            out.append(values.get(f, b"" if ch == "s" else 0))
        return self.codec.pack(*out)


def _field_kinds(fmt: str) -> list[str]:
    """The kind character of each value-bearing item of a struct format (padding skipped)."""
    kinds: list[str] = []
    num = ""
    for ch in fmt.lstrip("<=>!@"):
        if ch.isdigit():
            num += ch
            continue
        if ch == "x":
            pass
        elif ch == "s":
            kinds.append("s")
        else:
            kinds.extend(ch * (int(num) if num else 1))
        num = ""
    return kinds


def _field_offsets(fmt: str, fields: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Each field of a flat struct format -> (offset, size); formats here never use native alignment."""
    order = fmt[0]
    out: dict[str, tuple[int, int]] = {}
    names = iter(fields)
    pos = 0
    num = ""
    for ch in fmt[1:]:
        if ch.isdigit():
            num += ch
            continue
        n = int(num) if num else 1
        num = ""
        if ch == "x":
            pos += n
        elif ch == "s":
            out[next(names)] = (pos, n)
            pos += n
        else:
            size = struct.calcsize(order + ch)
            for _ in range(n):
                out[next(names)] = (pos, size)
                pos += size
    return out
