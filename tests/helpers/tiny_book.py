"""A tiny stand-in book for the runner's tests: one fast notebook that can be told to fail
or to sleep, and a catalog declaring it. Used in-process and from subprocesses."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from initstudy.study.catalog import PROFILES, NotebookSpec, Param


def _same(value):
    return {p: value for p in PROFILES}


TINY = NotebookSpec(
    name="tiny",
    title="A tiny notebook",
    claims=(),
    params=(
        Param("seeds", "seeds", "seeds", _same(2)),
        Param("value", "int", "a number written to the table", _same(1), min=0, max=100),
        Param("fail", "bool", "raise in the last cell", _same(False)),
        Param("sleep", "float", "seconds to sleep before writing", _same(0.0), min=0.0, max=600.0),
        Param("counter", "str", "a file that gets one line per execution", _same("")),
        Param("fail_if", "str", "fail when this file exists", _same("")),
    ),
)
CATALOG = {"tiny": TINY}


def make_root(root: Path) -> Path:
    """Write the tiny book's files (notebook, toc marker) under ``root``."""
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    params = new_code_cell(
        'profile = "cpu"\nresults_dir = None\nseeds = None\nvalue = None\nfail = None\nsleep = None\n'
        'counter = None\nfail_if = None'
    )
    params.metadata["tags"] = ["parameters"]
    body = new_code_cell(
        "import os, time\n"
        "import pandas as pd\n"
        "from initstudy.study.results import save_table, atomic_write_json\n"
        "seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)\n"
        "if counter:\n"
        "    with open(counter, 'a') as f:\n"
        "        f.write(f'{value} {seed_list}\\n')\n"
        "time.sleep(sleep or 0)\n"
        "if fail_if and os.path.exists(fail_if):\n"
        "    raise RuntimeError('told to fail by ' + fail_if)\n"
        "save_table(pd.DataFrame({'seed': seed_list, 'value': [value] * len(seed_list)}),\n"
        "           f'{results_dir}/tables/values.csv')\n"
        "atomic_write_json(f'{results_dir}/claims.json', [{'id': 'tiny', 'verdict': 'n/a',\n"
        "                  'measurements': {'value': [float(value)] * len(seed_list)}}])\n"
        "atomic_write_json(f'{results_dir}/provenance.json', {'wall_time_s': 0.0})\n"
        "if fail:\n"
        "    raise RuntimeError('told to fail')"
    )
    nb = new_notebook(cells=[params, body], metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                     "display_name": "Python 3"}})
    nbformat.write(nb, root / "notebooks" / "tiny.ipynb")
    return root


def main(argv: list[str]) -> int:
    """Run the runner on the tiny book: ``python -m tiny_book ROOT ARGS...``."""
    from initstudy.study.runner import main as run

    return run(argv[1:], catalog=CATALOG, root=Path(argv[0]))


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
