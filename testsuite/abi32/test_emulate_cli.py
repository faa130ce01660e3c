"""``mqsentry emulate`` without Qiling: it says how to install it and exits 2 (runs everywhere)."""

from __future__ import annotations

import argparse
import sys

import pytest

from mqsentry.tools import emulate


def test_emulate_without_qiling_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "qiling", None)  # import qiling raises ImportError
    args = argparse.Namespace(program="/bin/true", args=[], rootfs=None, stats=False, qiling_log=False)
    assert emulate.run(args) == emulate.UNAVAILABLE_STATUS
    assert "pip install 'mqsentry[qiling]'" in capsys.readouterr().err


def test_emulate_is_a_subcommand() -> None:
    from mqsentry.tools.cli import _build_parser

    args = _build_parser().parse_args(["emulate", "--rootfs", "/r", "prog", "-x", "y"])
    assert (args.command, args.rootfs, args.program, args.args) == ("emulate", "/r", "prog", ["-x", "y"])
