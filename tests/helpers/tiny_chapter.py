"""A tiny chapter, declared as a real one is (SPEC, CLAIMS, a measurement function) but kept
outside the package: ``INITSTUDY_CHAPTERS=tiny_chapter`` adds it to the catalog and the ledger.
tests/test_chapters.py writes its notebook and runs it end to end."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from initstudy.study.catalog import NotebookSpec, Param, common_params, same
from initstudy.study.claims import Check, Claim, Criterion

SPEC = NotebookSpec(
    name="tiny_chapter",
    title="A tiny chapter",
    summary="A value measured once per seed, against a threshold of 1.",
    params=(
        *common_params((3, 3, 3)),
        Param("value", "float", "the value every seed measures", same(2.0), min=0.0, max=100.0),
    ),
)

CLAIMS = (
    Claim("tiny-at-least-one", "The measured value is at least 1.", "Nowhere", "the value, per seed",
          Criterion((Check("tiny_value", ">=", 1.0, "the value is at least 1", control="tiny_control"),)),
          control="a value of 0.5, judged by the same rule", short="The value is at least 1."),
)


def measurements(seeds: list[int], value: float) -> dict:
    """The chapter's one claim measured on every seed (the seed shifts the value by a hair, so
    that the interval has a width, whatever the seeds' size), with its negative control."""
    return {"tiny-at-least-one": {"tiny_value": [value + 1e-3 * (s % 10) for s in seeds],
                                  "tiny_control": [0.5 + 1e-3 * (s % 10) for s in seeds]}}


NOTEBOOK_CELLS = [
    '# A tiny chapter',
    'profile = None\nresults_dir = None\nseeds = None\ndevice = None\ndata_source = None\nvalue = None',
    'import tiny_chapter\nfrom initstudy.study.run import Run\n\nrun = Run.start("tiny_chapter", globals())',
    'run.verdicts(tiny_chapter.measurements(run.seeds, run.params["value"]))',
    '(verdict-tiny-at-least-one)=\n**`tiny-at-least-one`: {glue:md}`verdict-tiny-at-least-one`.**',
    'run.finish()',
]


def write_notebook(path) -> None:
    cells = [new_markdown_cell(c) if c.startswith(("#", "(")) else new_code_cell(c) for c in NOTEBOOK_CELLS]
    cells[1].metadata["tags"] = ["parameters"]
    for cell in cells[2:]:
        if cell.cell_type == "code":
            cell.metadata["tags"] = ["hide-input"]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                            "display_name": "Python 3"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
