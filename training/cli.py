"""The training side's `stemlab` subcommands; `app/cli.py` calls `register(subparsers)`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add make-data, make-benchmark and make-demo to an argparse subparsers object."""
    from training import benchmark_set, demo, make_data

    p = subparsers.add_parser("make-data", help="generate a multitrack training set (songs written by code)",
                              description=make_data.__doc__)
    make_data.add_arguments(p)
    p.set_defaults(func=make_data.run)

    p = subparsers.add_parser("make-benchmark", help="build the public benchmark set (openttd-openmsx + TimGM6mb)",
                              description=benchmark_set.__doc__)
    benchmark_set.add_arguments(p)
    p.set_defaults(func=benchmark_set.run)

    p = subparsers.add_parser("make-demo", help="render the demo song into resources/demo/",
                              description=demo.__doc__)
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry for testing: python -m training.cli make-data ..."""
    parser = argparse.ArgumentParser(prog="stemlab-training")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
