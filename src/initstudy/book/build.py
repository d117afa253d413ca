"""``python -m initstudy book --profile P [--results-dir D]``: build the static HTML book from
one profile's results.

The root ``_toc.yml`` points at the cpu profile's executed notebooks
(``results/cpu/<notebook>/<notebook>``). For another profile, or results in another folder
``D`` (inside the repository, where Sphinx can read them), a derived table of contents with
``results/cpu/`` replaced by ``<D>/<profile>/`` is written beside those results and passed to
``jupyter-book build --toc``; the generated pages read the same profile and folder through
``INITSTUDY_PROFILE`` and ``INITSTUDY_RESULTS``. Warnings are errors (``-W -n --keep-going``).

The cpu book of ``results/`` goes to ``_build/html``; any other to ``_build/<profile>/_build/html``
(results elsewhere: ``_build/<D's name>-<profile>/_build/html``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from initstudy.chapters import ORDER
from initstudy.study.catalog import NOTEBOOKS, PROFILES
from initstudy.study.summary import write_summary
from initstudy.study.layout import DEFAULT_PROFILE, PROFILE_ENV, RESULTS_ENV, Layout


def _default_results(layout: Layout) -> bool:
    return layout.results == layout.root / "results"


def toc_for(layout: Layout, profile: str) -> Path:
    """The table of contents for ``profile``: the root one, or a derived copy (another profile,
    another results folder, or chapters registered from outside the package, which join the
    chapters' part after the book's own)."""
    toc = layout.root / "_toc.yml"
    extra = [name for name in NOTEBOOKS if name not in ORDER]
    if profile == DEFAULT_PROFILE and _default_results(layout) and not extra:
        return toc
    where = layout.profile_dir(profile).relative_to(layout.root).as_posix()
    text = toc.read_text(encoding="utf-8").replace(f"results/{DEFAULT_PROFILE}/", f"{where}/")
    if extra:
        last = f"      - file: {where}/{ORDER[-1]}/{ORDER[-1]}\n"
        if last not in text:
            raise ValueError(f"_toc.yml has no line for the last chapter, {ORDER[-1]}")
        text = text.replace(last, last + "".join(f"      - file: {where}/{n}/{n}\n" for n in extra))
    derived = layout.profile_dir(profile) / "_toc.yml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(text, encoding="utf-8")
    return derived


def output_dir(layout: Layout, profile: str) -> Path:
    if _default_results(layout):
        return layout.root if profile == DEFAULT_PROFILE else layout.root / "_build" / profile
    return layout.root / "_build" / f"{layout.results.name}-{profile}"


def missing_notebooks(layout: Layout, profile: str) -> list[str]:
    return [name for name in NOTEBOOKS if not layout.executed_notebook(profile, name).is_file()]


def build(profile: str = DEFAULT_PROFILE, root: Path | None = None, strict: bool = True,
          all_pages: bool = False, quiet: bool = False, builder: str = "html", results_dir: Path | None = None) -> int:
    """Build the book (HTML, or a PDF with ``builder="pdflatex"``); return jupyter-book's
    exit status."""
    layout = Layout.find(root, results_dir)
    planned = sorted(p.parent.name for p in layout.profile_dir(profile).glob("*/provenance.json")
                     if (json.loads(p.read_text()).get("training_core") or {}).get("plan_mode"))
    if planned:
        raise SystemExit(f"book: {', '.join(planned)} of {layout.profile_dir(profile)} ran in plan mode (one step "
                         f"per ensemble, not results); rerun them without INITSTUDY_PLAN")
    write_summary(layout.profile_dir(profile))
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(layout.root),
           "--path-output", str(output_dir(layout, profile)), "--toc", str(toc_for(layout, profile)),
           "--builder", builder]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    if all_pages:
        cmd.append("--all")
    if quiet:
        cmd.append("-q")
    env = {**os.environ, PROFILE_ENV: profile, RESULTS_ENV: str(layout.results)}
    return subprocess.run(cmd, cwd=layout.root, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initstudy book")
    parser.add_argument("--profile", default=DEFAULT_PROFILE)
    parser.add_argument("--all", action="store_true", help="rebuild every page")
    parser.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--builder", default="html", choices=("html", "pdflatex"),
                        help="html (default) or pdflatex (needs a LaTeX toolchain)")
    parser.add_argument("--results-dir", default=None,
                        help="where profile folders are (default: <root>/results; must be inside the repository)")
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:
        print(f"initstudy book: error: unknown profile '{args.profile}'; allowed: {', '.join(PROFILES)}",
              file=sys.stderr)
        return 2
    layout = Layout.find(results=args.results_dir)
    if not layout.results.is_relative_to(layout.root):
        print(f"initstudy book: error: --results-dir must be inside the repository ({layout.root}), where the "
              f"book's build can read it; got {layout.results}", file=sys.stderr)
        return 2
    missing = missing_notebooks(layout, args.profile)
    if missing:
        print(f"initstudy book: error: no executed notebook for {', '.join(missing)} at the "
              f"{args.profile} profile; run `python -m initstudy run --profile {args.profile}` first",
              file=sys.stderr)
        return 2
    return build(args.profile, layout.root, strict=not args.no_strict, all_pages=args.all, quiet=args.quiet,
                 builder=args.builder, results_dir=layout.results)


if __name__ == "__main__":
    sys.exit(main())
