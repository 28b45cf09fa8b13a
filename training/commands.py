"""The training side's `stemlab` commands: make-data, make-benchmark, make-demo, train, export-model,
evaluate. `app/cli.py` finds them through the `stemlab.commands` entry points (pyproject.toml), so
`stemlab separate` and `stemlab gui` never import training; `python -m training.commands ...` runs them
without the app.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Optional


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every training command to an argparse subparsers object."""
    from training.datasets import benchmark, demo, make_data
    from training.run import cli as run_cli

    p = subparsers.add_parser("make-data", help="generate a multitrack training set (songs written by code)",
                              description=make_data.__doc__)
    make_data.add_arguments(p)
    p.set_defaults(func=make_data.run)

    p = subparsers.add_parser("make-benchmark", help="build the public benchmark set (openttd-openmsx + TimGM6mb)",
                              description=benchmark.__doc__)
    benchmark.add_arguments(p)
    p.set_defaults(func=benchmark.run)

    p = subparsers.add_parser("make-demo", help="render the demo song into resources/demo/",
                              description=demo.__doc__)
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)

    run_cli.register(subparsers)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """argv: the command and its options, e.g. ["make-data", "--hours", "1", ...]."""
    parser = argparse.ArgumentParser(prog="stemlab")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
