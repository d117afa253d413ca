"""The gpu profile on one GPU, as one prepared script.

``python -m initstudy.study.gpu_run [NB ...] [--results-dir D] [--budget S]`` runs each chapter
(default: every one, in the book's order) at the gpu profile in its own runner process
(``python -m initstudy run NB --profile gpu``), one after the other, so that each chapter's
results are saved before the next starts and a chapter that fails leaves the others in place.
Then it prints, per chapter, its exit status, its wall time, and its training core's
member-steps/s and TFLOP/s against the GPU's own matrix-product rate (``make bench``'s work
table, :func:`initstudy.study.bench.work_bench`), and writes the same to
``<results>/gpu/gpu_run.json``. ``--budget S`` (default 600 s): start no chapter once S seconds
have passed, so that a lease's remaining minutes go to saving and bringing back what ran.

Without a CUDA device it refuses (exit 2) before any work: the gpu profile on a CPU would run
for hours. ``--plan`` sizes the profile instead, on any machine: each chapter runs at the gpu
profile on the CPU in the training core's plan mode (:data:`initstudy.core.ensemble.PLAN_ENV`:
every ensemble counts the work its configs ask for, then trains one step), into
``results/plan/gpu`` (the published results are not touched; plan-mode numbers are not results),
and the report gives each chapter's planned TFLOP (an upper bound: a run that diverges stops)
and the sustained rate the whole profile needs to fit :data:`PROFILE_COMPUTE_S`. Work outside
the training core is not in the plan: probes at init, LSUV's fitting passes, and the LSUV
chapter's cost race and step timing (a BN against an LSUV ResNet-20, trained and timed outside
the core, at full size even in plan mode). Offline GPU machines: see the repository's notes on running the study without a
network (``PYTHONPATH`` holding ``src`` and the bundled wheels).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from initstudy.study.catalog import NOTEBOOKS
from initstudy.study.layout import Layout
from initstudy.study.results import atomic_write_json, read_json

#: What the whole gpu profile's compute must fit in on one H100 (issue 24): 5 minutes, so that
#: start-up, data and the rerun of a failed chapter fit a 15-minute lease.
PROFILE_COMPUTE_S = 300.0


def chapter_report(profile_dir: Path, name: str, rc: int, wall: float) -> dict:
    """One chapter's line: exit status, runner wall time, and from its provenance (when it
    finished) the notebook's wall time, member-steps/s, TFLOP trained and evaluated, and the
    rate achieved (TFLOP/s)."""
    row = {"chapter": name, "rc": rc, "runner_s": round(wall, 1)}
    path = profile_dir / name / "provenance.json"
    if rc == 0 and path.is_file():
        prov = read_json(path)
        work = prov.get("training_core") or {}
        row.update(notebook_s=prov.get("wall_time_s"), member_steps_per_s=work.get("member_steps_per_s"),
                   planned_tflop=round((work.get("planned_train_gflop", 0.0)
                                        + work.get("planned_eval_gflop", 0.0)) / 1e3, 2),
                   tflop=round((work.get("train_gflop", 0.0) + work.get("eval_gflop", 0.0)) / 1e3, 2),
                   tflop_per_s=None if work.get("gflop_per_s") is None else round(work["gflop_per_s"] / 1e3, 2),
                   device=prov.get("device"))
    return row


def report_text(rows: list[dict]) -> str:
    """The per-chapter table, then the total against :data:`PROFILE_COMPUTE_S`.

    >>> print(report_text([{"chapter": "fixup", "rc": 0, "runner_s": 70.0, "notebook_s": 61.5,
    ...                     "member_steps_per_s": 350.0, "tflop": 2500.0, "tflop_per_s": 41.0}]))
    chapter          rc  runner s  notebook s  member-steps/s      TFLOP  TFLOP/s
    fixup             0      70.0        61.5           350.0     2500.0     41.0
    every chapter: 70 s of runner time against the profile's 300 s of compute
    """
    def cell(v, fmt: str = "{:.1f}") -> str:
        return "–" if v is None else fmt.format(v)

    lines = [f"{'chapter':<15} {'rc':>4} {'runner s':>9} {'notebook s':>11} {'member-steps/s':>15} {'TFLOP':>10} "
             f"{'TFLOP/s':>8}"]
    for r in rows:
        lines.append(f"{r['chapter']:<15} {r['rc']:>4} {r['runner_s']:>9.1f} {cell(r.get('notebook_s')):>11} "
                     f"{cell(r.get('member_steps_per_s')):>15} {cell(r.get('tflop')):>10} "
                     f"{cell(r.get('tflop_per_s')):>8}")
    total = sum(r["runner_s"] for r in rows)
    lines.append(f"every chapter: {total:.0f} s of runner time against the profile's {PROFILE_COMPUTE_S:.0f} s "
                 f"of compute")
    return "\n".join(lines)


def plan_text(rows: list[dict]) -> str:
    """The plan's table: per chapter its planned TFLOP; then the total and the sustained rate
    that fits it in :data:`PROFILE_COMPUTE_S`.

    >>> print(plan_text([{"chapter": "fixup", "rc": 0, "planned_tflop": 6000.0},
    ...                  {"chapter": "transfer", "rc": 0, "planned_tflop": 3.0}]))
    chapter          rc  planned TFLOP
    fixup             0         6000.0
    transfer          0            3.0
    every chapter: 6003.0 TFLOP planned; 300 s of compute need a sustained 20.0 TFLOP/s
    """
    lines = [f"{'chapter':<15} {'rc':>4} {'planned TFLOP':>14}"]
    for r in rows:
        v = r.get("planned_tflop")
        lines.append(f"{r['chapter']:<15} {r['rc']:>4} {'–' if v is None else f'{v:.1f}':>14}")
    total = sum(r.get("planned_tflop") or 0.0 for r in rows)
    lines.append(f"every chapter: {total:.1f} TFLOP planned; {PROFILE_COMPUTE_S:.0f} s of compute need a sustained "
                 f"{total / PROFILE_COMPUTE_S:.1f} TFLOP/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initstudy.study.gpu_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help=f"chapters to run (default: all of {', '.join(NOTEBOOKS)})")
    parser.add_argument("--results-dir", default=None, help="results folder (default results/)")
    parser.add_argument("--budget", type=float, default=None,
                        help="start no chapter after this many seconds (default 600; with --plan, none)")
    parser.add_argument("--plan", action="store_true",
                        help="size the gpu profile on this machine (plan mode, into results/plan): no GPU needed")
    args = parser.parse_args(argv)
    unknown = [n for n in args.notebooks if n not in NOTEBOOKS]
    if unknown:
        print(f"gpu_run: unknown notebook {unknown[0]!r}; allowed: {', '.join(NOTEBOOKS)}", file=sys.stderr)
        return 2
    if args.budget is not None and args.budget <= 0:
        print(f"gpu_run: --budget must be a positive number of seconds, got {args.budget:g}", file=sys.stderr)
        return 2
    import os

    import torch

    if args.plan:
        from initstudy.core.ensemble import PLAN_ENV

        os.environ[PLAN_ENV] = "1"  # the runner processes inherit it
        args.results_dir = args.results_dir or "results/plan"
    elif not torch.cuda.is_available():
        print("gpu_run: no CUDA device here; the gpu profile's script runs on a GPU machine "
              "(on a CPU, `python -m initstudy run --profile cpu`)", file=sys.stderr)
        return 2
    if args.budget is None:
        args.budget = float("inf") if args.plan else 600.0
    layout = Layout.find(results=args.results_dir)
    profile_dir = layout.profile_dir("gpu")
    rows, start = [], time.perf_counter()
    for name in args.notebooks or list(NOTEBOOKS):
        if time.perf_counter() - start > args.budget:
            print(f"gpu_run: {args.budget:.0f} s passed; {name} and the chapters after it not started", flush=True)
            break
        cmd = [sys.executable, "-m", "initstudy", "run", name, "--profile", "gpu", "--no-progress"]
        cmd += ["--results-dir", args.results_dir] if args.results_dir else []
        cmd += ["-p", "device", "cpu", "--force"] if args.plan else []
        t0 = time.perf_counter()
        rc = subprocess.run(cmd).returncode
        rows.append(chapter_report(profile_dir, name, rc, time.perf_counter() - t0))
        text = plan_text if args.plan else report_text
        print(text(rows[-1:]).split("\n")[1], flush=True)
        atomic_write_json(profile_dir / ("gpu_plan.json" if args.plan else "gpu_run.json"),
                          {"chapters": rows, "gpu": None if args.plan else torch.cuda.get_device_name(0)})
    print((plan_text if args.plan else report_text)(rows))
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
