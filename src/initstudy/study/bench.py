"""``make bench``: wall times measured, never asserted.

Prints one table: every notebook at the smoke profile (median of several forced runs into a
temporary results folder) and at the cpu profile (one forced run into ``results/cpu``, which
is what ``make book`` would produce), the whole cpu book (runs plus the book build), the
set-up time recorded when the venv was installed, the set-up check when nothing changed,
and the no-change ``make book``. Each line carries its budget for the study's 2-core
machines and the measured/budget ratio. Timings are noisy there: read medians and ratios.

With the cpu profile it also prints each chapter's training-core work from its provenance
(member-steps per second, TFLOP, the rate achieved against this machine's matrix-product
rate, and the time those FLOPs would take at that rate), and side by side, alternating:
the conv nets' CPU training with NCHW against channels-last weights, float32 against
bfloat16 autocast (:func:`precision_bench`), and LSUV with whole forward passes against passes
that stop at the measured layer.

Options: ``--smoke-repeats N`` (default 3), ``--skip-cpu`` (smoke and the no-change rebuild
only), ``--json PATH`` (also write the table), ``--only-ensemble`` (looped against ensemble
only), ``--work PROFILE_DIR [--device cuda]`` (only the work table of a finished run, e.g.
``results/cpu``, or a gpu run's folder on the GPU machine).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from initstudy.chapters import fixup
from initstudy.core.data import Dataset
from initstudy.core.ensemble import member_stream, train_ensemble
from initstudy.core.models import mlp
from initstudy.core.resnets import resnet
from initstudy.core.train import TrainConfig, evaluate, make_optimizer, param_groups, step_times
from initstudy.study.catalog import NOTEBOOKS
from initstudy.study.layout import DEFAULT_PROFILE, Layout, repo_root
from initstudy.study.results import atomic_write_json, read_json
from initstudy.study.sweep import engine_overhead

#: Budgets on the study's 2-core machine: a notebook at the smoke profile, a chapter at the cpu
#: profile, every chapter of the cpu profile together, the whole book from nothing, a no-change
#: rebuild. Raised in December 2026 from 5 minutes a chapter and 20 for the profile to 6 and 25
#: (issue 24), to buy the fair tests' budgets (Fixup's full first epoch, He's Fig. 3 grid). They
#: hold on the machine that runs the bench, which prints its matrix-product rate beside them.
BUDGET_S = {"smoke": 30.0, "cpu": 360.0, "cpu-profile": 1500.0, "book": 1800.0, "rebuild": 30.0}


def _timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    return time.perf_counter() - t0, proc.returncode


def _run_cmd(name: str, profile: str, results_dir: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "initstudy", "run", name, "--profile", profile, "--force", "--no-progress"]
    return cmd + (["--results-dir", str(results_dir)] if results_dir else [])


def micro(add) -> None:
    """Side-by-side micro-benchmarks of the chapters' costly pieces."""
    import torch

    x, y = torch.randn(64, 1, 14, 14), torch.randint(0, 10, (64,))
    models = {"bn": resnet(20, "he-fan-out", in_channels=1, seed=0),
              "fixup": resnet(20, "fixup", in_channels=1, seed=0)}
    times = step_times(models, x, y)
    add("ResNet-20 step, BatchNorm (batch 64, 14x14)", "-", times["bn"], None)
    add("ResNet-20 step, Fixup (same run, interleaved)", "-", times["fixup"], None)
    ratio = [f / b for f, b in zip(times["fixup"], times["bn"])]
    add("Fixup / BN per-step time (ratio of paired steps)", "-", ratio, None, "ratio, not seconds")

    t0 = time.perf_counter()
    fixup.growth_sweep(fixup.GROWTH_KINDS, 5000, [0], 16, 8, 8, padding="zeros", record_every=10, progress=False)
    add("variance sweep to 10,000 layers (6 kinds, 5,000 blocks, width 16)", "-",
        [time.perf_counter() - t0], 60.0)
    layout_bench(add)
    precision_bench(add)
    lsuv_bench(add)


def precision_bench(add, repeats: int = 5) -> None:
    """Training steps in float32 against bfloat16 autocast (``torch.autocast``), side by side,
    alternating: a matrix product n = 1024, the Fixup chapter's ResNet-20 step (BatchNorm, batch
    128, 14x14, the first-epoch experiment's) and a 6-layer 512-wide MLP step (batch 128). Whether
    bfloat16 pays depends on the CPU (its AVX-512 BF16 or AMX units, or none): the chapters train
    in float32 on the CPU, and this line is what a change of that would rest on."""
    import torch
    from torch.nn import functional as F

    def step_fn(model, x, y, bf16: bool):
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1024, 1024, generator=g), torch.randn(1024, 1024, generator=g)
    a16, b16 = a.bfloat16(), b.bfloat16()  # converted once, outside the timed product
    cases = {
        "matrix product n=1024": lambda bf16: (lambda: (a16 @ b16) if bf16 else a @ b),
        "ResNet-20 step (BN, batch 128, 14x14)": lambda bf16: step_fn(
            resnet(20, "he-fan-out", in_channels=1, seed=0), torch.randn(128, 1, 14, 14, generator=g),
            torch.randint(0, 10, (128,), generator=g), bf16),
        "6-layer 512-wide MLP step (batch 128)": lambda bf16: step_fn(
            mlp(784, [512] * 6, 10), torch.randn(128, 784, generator=g), torch.randint(0, 10, (128,), generator=g),
            bf16),
    }
    for name, make in cases.items():
        fns = {False: make(False), True: make(True)}
        for fn in fns.values():  # warm up: first calls pick kernels
            fn()
        times = {False: [], True: []}
        for _ in range(repeats):
            for bf16, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[bf16].append(time.perf_counter() - t0)
        add(f"{name}: float32", "-", times[False], None)
        add(f"{name}: bfloat16 autocast", "-", times[True], None)
        add(f"{name}: bfloat16 / float32 time", "-", [t / f for t, f in zip(times[True], times[False])], None,
            "ratio, not seconds (below 1: bfloat16 is faster here)")


def layout_bench(add, repeats: int = 3) -> None:
    """The conv nets' training on the CPU with each member's convolution weights in the usual
    (NCHW) order against channels-last order (the default there), side by side, alternating:
    the transfer chapter's small CNN (5 members, batch 32, 28x28) and Fixup ResNet-20 (3
    members, batch 64, 14x14), each with an evaluation at the start and the end."""
    import torch

    from initstudy.core.models import small_cnn

    g = torch.Generator().manual_seed(0)
    cases = {"small CNN, 5 members x 60 steps": (lambda s: small_cnn(1, 10, 28), (1, 28, 28), 32, 5, 60),
             "Fixup ResNet-20, 3 members x 20 steps": (lambda s: resnet(20, "fixup", in_channels=1, seed=s),
                                                       (1, 14, 14), 64, 3, 20)}
    for name, (build, shape, batch, k, steps) in cases.items():
        data = _random_data(2048, 1000, shape, g)
        configs = [TrainConfig(steps=steps, batch_size=batch, lr=0.01, momentum=0.9, seed=s, eval_every=10**9)
                   for s in range(k)]
        times = {False: [], True: []}
        for _ in range(repeats):
            for layout in times:
                models = [build(s) for s in range(k)]
                t0 = time.perf_counter()
                train_ensemble(models, data, configs, channels_last=layout)
                times[layout].append(time.perf_counter() - t0)
        add(f"{name}: weights NCHW", "-", times[False], None)
        add(f"{name}: weights channels-last (the CPU default)", "-", times[True], None)
        add(f"{name}: NCHW / channels-last time", "-", [a / b for a, b in zip(times[False], times[True])], None,
            "ratio, not seconds")


def lsuv_bench(add, repeats: int = 3) -> None:
    """LSUV (the paper's tolerance) on the LSUV chapter's ResNet-20 at 14x14, batch 128, with
    every forward pass through the whole network against passes that stop at the measured
    layer (the default; same result), side by side, alternating."""
    import torch

    from initstudy.chapters import lsuv as lsuv_chapter
    from initstudy.core.lsuv import lsuv_init

    g = torch.Generator().manual_seed(0)
    data = _random_data(256, 8, (1, 14, 14), g)
    times = {False: [], True: []}
    for _ in range(repeats):
        for stop in times:
            net = lsuv_chapter.build("resnet", data, 20, 16, seed=0)
            t0 = time.perf_counter()
            lsuv_init(net, data.x_train[:128], seed=0, stop_early=stop)
            times[stop].append(time.perf_counter() - t0)
    add("LSUV on ResNet-20: every pass through the whole network", "-", times[False], None)
    add("LSUV on ResNet-20: passes stop at the measured layer (the default)", "-", times[True], None)
    add("LSUV on ResNet-20: whole / stopped time", "-", [a / b for a, b in zip(times[False], times[True])], None,
        "ratio, not seconds")


def matmul_rate(n: int | None = None, repeats: int = 5, device: str = "cpu", best: bool = False) -> float:
    """The machine's fp32 matrix-product rate in GFLOP/s: the median (``best``: the fastest)
    of ``repeats`` n x n products (n = 1024 on the CPU, 8192 on a GPU, whose queue is drained
    before each clock reading). On a shared machine noise only slows a product down, so the
    fastest is the better estimate of what the machine can do."""
    import torch

    n = n or (8192 if device.startswith("cuda") else 1024)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / (min(times) if best else statistics.median(times)) / 1e9


def best_matmul_rate(device: str = "cpu") -> float:
    """The work table's reference: the fastest of 20 products (:func:`matmul_rate`)."""
    return matmul_rate(repeats=20, device=device, best=True)


def _step_flops(model, x, y) -> float:
    """FLOPs of one training step (forward and backward) of ``model`` on batch ``(x, y)``."""
    import copy

    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    m = copy.deepcopy(model)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(m(x), y).backward()
    return float(counter.get_total_flops())


def _random_data(n_train: int, n_eval: int, shape, g) -> "Dataset":
    """Random images and labels in the three splits (validation and test ``n_eval`` each): the
    benchmarks time arithmetic, not learning."""
    import torch

    def split(n):
        return torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)

    (xt, yt), (xv, yv), (xs, ys) = split(n_train), split(n_eval), split(n_eval)
    return Dataset(name="bench", source="random", x_train=xt, y_train=yt, x_val=xv, y_val=yv,
                   x_test=xs, y_test=ys, num_classes=10)


def _looped(models, data, configs) -> None:
    """The baseline: one model after another, a plain torch.nn / torch.optim loop per model
    fed its own batches, with the same evaluations as the ensemble (validation at step 0 and at
    the end, the test split once at the end): what the library did before the ensemble core, without its per-step bookkeeping."""
    from torch.nn import functional as F

    for model, cfg in zip(models, configs):
        opt = make_optimizer(param_groups(model, cfg), cfg)
        evaluate(model, data.x_val, data.y_val)
        model.train()
        for block in member_stream(cfg.seed, len(data.y_train), cfg.batch_size, cfg.steps):
            for idx in block["idx"]:
                opt.zero_grad()
                F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
                opt.step()
        evaluate(model, data.x_val, data.y_val)
        evaluate(model, data.x_test, data.y_test)


def ensemble_bench(add, ks=(1, 5, 20, 100), repeats: int = 3) -> None:
    """Member-steps per second, looped against the ensemble core, for the chapters' MLP
    (784-5x128-10 ReLU, batch 64) and Fixup ResNet-20 at 14x14 (batch 128), side by side
    in one run (the two alternate, ``repeats`` times), with the share of the machine's fp32
    matrix-product rate measured in the same run."""
    import torch

    peak = []
    cases = {
        "MLP 784-5x128-10, batch 64": (lambda s: mlp(784, [128] * 5, 10), (784,), 64, 60),
        "Fixup ResNet-20 14x14, batch 128": (lambda s: resnet(20, "fixup", in_channels=1, num_classes=10, width=16,
                                                               seed=s), (1, 14, 14), 128, 4),
    }
    g = torch.Generator().manual_seed(0)
    for name, (build, shape, batch, steps) in cases.items():
        data = _random_data(4096, 256, shape, g)
        flops = _step_flops(build(0), data.x_train[:batch], data.y_train[:batch])
        for k in ks:
            configs = [TrainConfig(steps=steps, batch_size=batch, lr=0.01, momentum=0.9, seed=s, eval_every=10**9)
                       for s in range(k)]
            rates = {"looped": [], "ensemble": []}
            for _ in range(repeats):
                peak.append(matmul_rate())
                for kind in rates:
                    models = [build(s) for s in range(k)]
                    t0 = time.perf_counter()
                    if kind == "looped":
                        _looped(models, data, configs)
                    else:
                        train_ensemble(models, data, configs)
                    rates[kind].append(k * steps / (time.perf_counter() - t0))
            for kind, r in rates.items():
                med = statistics.median(r)
                add(f"{name}: {kind}, K={k}", "-", r, None,
                    f"member-steps/s, not seconds; {med * flops / 1e9:.1f} GFLOP/s")
            add(f"{name}: ensemble / looped, K={k}", "-",
                [e / lo for e, lo in zip(rates["ensemble"], rates["looped"])], None, "ratio, not seconds")
            share = [statistics.median(rates["ensemble"]) * flops / 1e9 / p for p in peak[-repeats:]]
            add(f"{name}: ensemble share of the matmul rate, K={k}", "-", share, None, "ratio, not seconds")
    add("fp32 matrix-product rate (n=1024), measured alongside", "-", peak, None, "GFLOP/s, not seconds")


def work_rows(profile_dir: Path) -> list[tuple[str, dict, float, str]]:
    """(chapter, its training-core work, its wall time, its device) for each chapter of a
    finished run in ``profile_dir`` whose provenance records the work (runs of older versions
    do not)."""
    rows = []
    for name in NOTEBOOKS:
        path = Path(profile_dir) / name / "provenance.json"
        prov = read_json(path) if path.is_file() else {}
        if prov.get("training_core"):
            rows.append((name, prov["training_core"], prov["wall_time_s"], str(prov.get("device", "cpu"))))
    return rows


def work_bench(add, profile_dir: Path, rate: float) -> None:
    """Per chapter of a finished run (``profile_dir``, e.g. ``results/cpu``), from its
    provenance: the training core's time, its member-steps per second, the FLOPs it did
    (matrix products and convolutions of training and evaluation) and the rate achieved,
    against ``rate``, this machine's fp32 matrix-product rate in GFLOP/s
    (:func:`best_matmul_rate`). "At the matmul rate" is the time those FLOPs would take at
    that rate: the training core's work at the speed of large matrix products (convolutions can come close to it, and a noisy machine's
    measured rate can be under its best, so a ratio near or above 100 % means "as fast as
    this machine multiplies matrices", not an error); the rest of the chapter's wall time is
    work outside the training core (propagation at init, LSUV, probes, figures). A rate that
    could not be computed (no training, or FLOPs not counted) is shown as "–"."""
    floors, cores, walls = [], [], []
    for name, work, wall, _ in work_rows(profile_dir):
        gflop = work["train_gflop"] + work["eval_gflop"]
        steps_rate = "–" if work["member_steps_per_s"] is None else f"{work['member_steps_per_s']:,.0f}"
        if work["gflop_per_s"] is None:  # FLOPs not counted for every step: no rate, no time at the matmul rate
            flop_text = "FLOPs not counted for every member-step"
        else:
            floor = gflop / rate
            floors.append(floor)
            flop_text = (f"{gflop / 1e3:.2f} TFLOP at {work['gflop_per_s']:.1f} GFLOP/s = "
                         f"{work['gflop_per_s'] / rate:.0%} of the matmul rate; at the matmul rate {floor:.0f} s")
        cores.append(work["seconds"]), walls.append(wall)
        add(f"{name}: training core ({work['member_steps']:,} member-steps)", profile_dir.name, [work["seconds"]],
            None, f"{steps_rate} member-steps/s; {flop_text}; chapter {wall:.0f} s")
    if cores:
        at_rate = f"at the matmul rate {sum(floors):.0f} s" if len(floors) == len(cores) else "–"
        add("every chapter: training core", profile_dir.name, [sum(cores)], None,
            f"{at_rate}; chapters {sum(walls):.0f} s, of which {sum(walls) - sum(cores):.0f} s outside the "
            "training core")


def sweep_bench(add, root: Path) -> None:
    """A smoke sweep of 8 jobs on a LocalCluster of 2 workers (one torch thread each) against
    the same 8 jobs one after another with 2 threads, and the engine's per-job overhead."""
    grid = ["sweep", "xavier_kaiming", "--profile", "smoke", "--grid", "he_depths=6,10", "--seeds", "4",
            "--no-progress"]
    walls = {}
    for engine, extra in (("dask", ["--engine", "dask", "--workers", "2", "--threads", "1"]),
                          ("serial", ["--engine", "serial", "--threads", "2"])):
        with tempfile.TemporaryDirectory(prefix="initstudy-sweep-") as tmp:
            wall, rc = _timed([sys.executable, "-m", "initstudy", *grid, *extra, "--results-dir", tmp], root)
            if rc != 0:
                raise SystemExit(f"bench: the {engine} sweep failed")
            walls[engine] = wall
    add("smoke sweep, 8 jobs, Dask LocalCluster 2 workers x 1 thread", "smoke", [walls["dask"]], None)
    add("same 8 jobs one after another, 2 threads", "smoke", [walls["serial"]], None)
    add("Dask / serial wall time (ratio)", "smoke", [walls["dask"] / walls["serial"]], None, "ratio, not seconds")
    add("Dask per-job overhead (no-op task round trip)", "-", engine_overhead(), None)


def _row(what: str, profile: str, times: list[float], budget: float | None, note: str = "") -> dict:
    med = statistics.median(times)
    return {"what": what, "profile": profile, "runs": len(times), "median_s": round(med, 4),
            "min_s": round(min(times), 4), "max_s": round(max(times), 4),
            "budget_s": budget, "ratio": round(med / budget, 3) if budget else None, "note": note}


def measure(smoke_repeats: int = 3, skip_cpu: bool = False) -> list[dict]:
    root = repo_root()
    rows: list[dict] = []

    def add(what: str, profile: str, times: list[float], budget: float | None, note: str = "") -> None:
        rows.append(_row(what, profile, times, budget, note))

    with tempfile.TemporaryDirectory(prefix="initstudy-bench-") as tmp:
        for name in NOTEBOOKS:
            times, inner = [], []
            for _ in range(smoke_repeats):
                wall, rc = _timed(_run_cmd(name, "smoke", Path(tmp)), root)
                if rc != 0:
                    raise SystemExit(f"bench: {name} failed at the smoke profile")
                times.append(wall)
                inner.append(read_json(Path(tmp) / "smoke" / name / "run.json")["wall_time_s"])
            add(f"{name} (runner process)", "smoke", times, BUDGET_S["smoke"])
            add(f"{name} (papermill execution)", "smoke", inner, BUDGET_S["smoke"])

    if not skip_cpu:
        book_total = 0.0
        for name in NOTEBOOKS:
            wall, rc = _timed(_run_cmd(name, "cpu", None), root)
            if rc != 0:
                raise SystemExit(f"bench: {name} failed at the cpu profile")
            book_total += wall
            add(f"{name} (runner process)", "cpu", [wall], BUDGET_S["cpu"])
        add("every chapter of the cpu profile (runner processes)", "cpu", [book_total], BUDGET_S["cpu-profile"])
        wall, rc = _timed([sys.executable, "-m", "initstudy", "book", "--profile", "cpu", "-q"], root)
        book_total += wall
        add("book build after the runs", "cpu", [wall], None)
        add("whole book: every chapter + kernel start-ups + build", "cpu", [book_total], BUDGET_S["book"])
        work_bench(add, Layout(root).profile_dir("cpu"), best_matmul_rate())

    micro(add)
    ensemble_bench(add)
    sweep_bench(add, root)
    install = root / ".venv" / ".install-seconds"
    if install.is_file():
        add("set-up (venv + pinned packages), recorded at install", "-", [float(install.read_text())], None,
            "measured once, when make installed the venv")
    setup = [_timed(["make", "-s", "setup"], root)[0] for _ in range(3)]
    add("set-up check when nothing changed (make setup)", "-", setup, None)
    if all(Layout(root).executed_notebook(DEFAULT_PROFILE, n).is_file() for n in NOTEBOOKS):
        _timed(["make", "-s", "book"], root)  # bring everything up to date first
        rebuild = [_timed(["make", "-s", "book"], root)[0] for _ in range(3)]
        add("no-change make book", "cpu", rebuild, BUDGET_S["rebuild"])
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'what':<70} {'profile':<7} {'runs':>4} {'median s':>9} {'min s':>8} {'max s':>8} " \
           f"{'budget s':>9} {'ratio':>6}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        budget = "" if r["budget_s"] is None else f"{r['budget_s']:.0f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"{r['what'][:70]:<70} {r['profile']:<7} {r['runs']:>4} {r['median_s']:>9.3g} "
                     f"{r['min_s']:>8.3g} {r['max_s']:>8.3g} {budget:>9} {ratio:>6}  {r.get('note', '')}")
    return "\n".join(lines)


def _work_problem(profile_dir: Path, device: str) -> str | None:
    """Why ``--work profile_dir --device device`` cannot run, or None."""
    import torch

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        return f"--device must be cpu or cuda, got {device!r}"
    if device != "cpu" and not torch.cuda.is_available():
        return f"--device {device}: no CUDA device is visible here"
    if not profile_dir.is_dir():
        return f"--work {str(profile_dir)!r} is not a folder; give a profile's results, e.g. results/cpu"
    rows = work_rows(profile_dir)
    if not rows:
        return (f"--work {str(profile_dir)!r}: no chapter's provenance there records the training core's work "
                "(give a profile's folder, e.g. results/cpu, of a run made by this version)")
    ran_on = sorted({d.split(":")[0] for *_, d in rows})
    if ran_on != [device.split(":")[0]]:
        return (f"--work {str(profile_dir)!r} was run on {', '.join(ran_on)}: compare it with that device's rate "
                f"(--device {ran_on[0]}), not {device}'s")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m initstudy.study.bench")
    parser.add_argument("--smoke-repeats", type=int, default=3)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--only-ensemble", action="store_true",
                        help="only the looped-against-ensemble measurements")
    parser.add_argument("--work", metavar="PROFILE_DIR", default=None,
                        help="only the training core's work per chapter of a finished run (e.g. results/cpu), "
                             "against this machine's matrix-product rate; runs nothing else")
    parser.add_argument("--device", default="cpu", help="the device whose matrix-product rate --work compares "
                        "with (cpu, or cuda where the run was made on a GPU)")
    args = parser.parse_args(argv)
    if args.device != "cpu" and not args.work:
        print("bench: --device only applies to --work (the work table of a finished run)", file=sys.stderr)
        return 2
    if args.work:
        problem = _work_problem(Path(args.work), args.device)
        if problem:
            print(f"bench: {problem}", file=sys.stderr)
            return 2
        rows = []
        work_bench(lambda *a, **kw: rows.append(_row(*a, **kw)), Path(args.work), best_matmul_rate(args.device))
    elif args.only_ensemble:
        rows = []
        ensemble_bench(lambda *a, **kw: rows.append(_row(*a, **kw)))
    else:
        rows = measure(args.smoke_repeats, args.skip_cpu)
    print(table(rows))
    if args.json:
        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
