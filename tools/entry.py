"""The ``mqsentry`` console script's entry point: ``mqsentry run`` without the rest of the CLI.

Linux counterpart: none. gVisor counterpart: runsc's main.go, which dispatches ``runsc do`` without
loading the other commands' machinery.

Start-up time is part of what ``mqsentry run`` promises (issue 10: ``mqsentry run /bin/true`` within
0.15 s), and the full command line (:mod:`mqsentry.tools.cli`) imports every subcommand module, some
of which import the whole sentry. So ``run`` is parsed here with its own subparser only (the same
``add_parser`` as in the full CLI, so its options and help are identical), and everything else goes
to :func:`mqsentry.tools.cli.main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv) if argv is not None else sys.argv[1:]
    if args[:1] == ["run"]:
        from mqsentry.tools import run as run_cmd

        parser = argparse.ArgumentParser(prog="mqsentry")
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        sub_parser = run_cmd.add_parser(sub)
        parsed = parser.parse_args(args)
        run_cmd.validate(sub_parser, parsed)  # as the full CLI does: usage errors before anything runs
        return int(run_cmd.run(parsed))
    from mqsentry.tools.cli import main as full_main

    return full_main(args)


__all__ = ["main"]
