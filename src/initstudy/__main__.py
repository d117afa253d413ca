"""Command line: ``python -m initstudy {run,book,data} ...``."""

from __future__ import annotations

import sys

USAGE = """usage: python -m initstudy COMMAND ...

commands:
  run    execute notebooks with papermill (python -m initstudy run --help)
  sweep  run one notebook over a parameter grid on Dask (python -m initstudy sweep --help)
  book   build the HTML book from one profile's results (python -m initstudy book --help)
  data   check or fetch the data sets (python -m initstudy data --help)
  publish  copy a profile's small result tables into published/<profile>/ for committing
  stability  rerun every chapter on fresh seeds and compare the verdicts (python -m initstudy stability --help)"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from initstudy.study.runner import main as run

        return run(rest)
    if command == "sweep":
        from initstudy.study.sweep import main as sweep

        return sweep(rest)
    if command == "book":
        from initstudy.book.build import main as book

        return book(rest)
    if command == "data":
        from initstudy.study.data_cli import main as data

        return data(rest)
    if command == "stability":
        from initstudy.study.stability import main as stability

        return stability(rest)
    if command == "publish":
        from initstudy.book.publish import main as publish

        return publish(rest)
    print(f"initstudy: error: unknown command '{command}'; allowed: run, sweep, book, data, publish, stability", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
