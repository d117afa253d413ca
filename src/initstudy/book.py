"""``python -m initstudy book --profile P``: build the static HTML book from one profile.

The root ``_toc.yml`` points at the cpu profile's executed notebooks
(``results/cpu/<notebook>/<notebook>``). For another profile a derived table of contents,
with ``results/cpu/`` replaced by ``results/<profile>/``, is written beside that profile's
results and passed to ``jupyter-book build --toc``; the generated pages read the same
profile through ``INITSTUDY_PROFILE``. Warnings are errors (``-W -n --keep-going``).

The cpu book goes to ``_build/html``; any other profile to ``_build/<profile>/_build/html``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .catalog import NOTEBOOKS, PROFILES
from .claims import write_summary

DEFAULT_PROFILE = "cpu"


def toc_for(root: Path, profile: str) -> Path:
    """The table of contents for ``profile``: the root one, or a derived copy."""
    toc = root / "_toc.yml"
    if profile == DEFAULT_PROFILE:
        return toc
    text = toc.read_text(encoding="utf-8").replace(f"results/{DEFAULT_PROFILE}/", f"results/{profile}/")
    derived = root / "results" / profile / "_toc.yml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(text, encoding="utf-8")
    return derived


def output_dir(root: Path, profile: str) -> Path:
    return root if profile == DEFAULT_PROFILE else root / "_build" / profile


def missing_notebooks(root: Path, profile: str) -> list[str]:
    return [name for name in NOTEBOOKS if not (root / "results" / profile / name / f"{name}.ipynb").is_file()]


def build(profile: str = DEFAULT_PROFILE, root: Path | None = None, strict: bool = True,
          all_pages: bool = False, quiet: bool = False, builder: str = "html") -> int:
    """Build the book (HTML, or a PDF with ``builder="pdflatex"``); return jupyter-book's
    exit status."""
    from .study import repo_root

    root = Path(root or repo_root()).resolve()
    write_summary(root / "results" / profile)
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root),
           "--path-output", str(output_dir(root, profile)), "--toc", str(toc_for(root, profile)),
           "--builder", builder]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    if all_pages:
        cmd.append("--all")
    if quiet:
        cmd.append("-q")
    env = {**os.environ, "INITSTUDY_PROFILE": profile}
    return subprocess.run(cmd, cwd=root, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initstudy book")
    parser.add_argument("--profile", default=DEFAULT_PROFILE)
    parser.add_argument("--all", action="store_true", help="rebuild every page")
    parser.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--builder", default="html", choices=("html", "pdflatex"),
                        help="html (default) or pdflatex (needs a LaTeX toolchain)")
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:
        print(f"initstudy book: error: unknown profile '{args.profile}'; allowed: {', '.join(PROFILES)}",
              file=sys.stderr)
        return 2
    from .study import repo_root

    root = repo_root()
    missing = missing_notebooks(root, args.profile)
    if missing:
        print(f"initstudy book: error: no executed notebook for {', '.join(missing)} at the "
              f"{args.profile} profile; run `python -m initstudy run --profile {args.profile}` first",
              file=sys.stderr)
        return 2
    return build(args.profile, root, strict=not args.no_strict, all_pages=args.all, quiet=args.quiet,
                 builder=args.builder)


if __name__ == "__main__":
    sys.exit(main())
