"""`python -m lenet bench [--json] [--quick]`: speed figures of this machine, all from one run.

A benchmark, not a test: it prints numbers (goals in parentheses) and asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

from lenet.config import LAYERS, SOURCE_RECIPE, TRANSFER_RECIPE, PAPER_LEVELS, PAPER_SAMPLES, PAPER_TRIALS
from lenet.data import find_emnist, load, to_net_input
from lenet.data.protocol import default_class_split, source_split
from lenet.device import CHOICES, describe, resolve
from lenet.grid.cells import grid, run_cell
from lenet.grid.fast import run_cells
from lenet.runtime.jobs import JobPool
from lenet.core.model import LeNet5
from lenet.core.net import Net, train_source
from lenet.core import checkpoint
from lenet.core.train import fit

# Useful multiply-adds per sample of each layer's forward pass (C3: its 60 real kernels only).
MACS = {"c1": 28 * 28 * 6 * 25, "s2": 6 * 14 * 14 * 2, "c3": 10 * 10 * 60 * 25, "s4": 16 * 5 * 5 * 2,
        "c5": 120 * 400, "f6": 20 * 120}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gflops(seconds: float = 1.0, device: torch.device = torch.device("cpu")) -> float:
    """Best float32 matmul rate (GFLOP/s) over a few sizes, with every core (the sweep uses them
    all), or on the GPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    best = 0.0
    try:
        for n in (512, 1024, 2048) if device.type == "cpu" else (2048, 4096, 8192):
            a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
            a @ b
            _sync(device)
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 3:
                a @ b
                reps += 1
                _sync(device)
            best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
    finally:
        torch.set_num_threads(threads)
    return best


def run_flops(n: int, samples_trained: int, samples_evaluated: int) -> float:
    """Useful FLOPs of a transfer run: forward + weight gradient of the levels above n, input
    gradient of all but the lowest of them, and forward passes for evaluation."""
    up = LAYERS[n:]
    fwd = sum(MACS[layer] for layer in up)
    train = 2 * (2 * fwd + fwd - MACS[up[0]])
    return samples_trained * train + samples_evaluated * 2 * fwd


def sweep_flops(results, n_classes: int, test_n: int) -> float:
    return sum(run_flops(r.n, r.epochs * r.k * n_classes, r.epochs * r.k * n_classes + test_n) for r in results)


def get_source(ds, src, quick: bool) -> tuple[Net, str]:
    folder = checkpoint.shipped("emnist" if ds.source.startswith("emnist") else "synthetic")
    if folder is not None:
        net = checkpoint.load(folder)
        if list(net.classes) == list(src):
            return net, f"pretrained {folder.name}"
    recipe = SOURCE_RECIPE.replace(max_epochs=2 if quick else SOURCE_RECIPE.max_epochs)
    net, _ = train_source(source_split(ds, src, per_class=400, heldout_per_class=100), recipe)
    return net, f"trained here ({recipe.max_epochs} epochs)"


class PlainLeNet5(torch.nn.Module):
    """The baseline of source_epoch_ratio: the same net written as plain PyTorch would
    (nn.Conv2d for C1 and C5, autograd through 1.7159 tanh(2x/3)), none of model.py's kernels."""

    def __init__(self):
        super().__init__()
        net = LeNet5(seed=0)
        self.c1, self.s2, self.c3, self.s4 = torch.nn.Conv2d(1, 6, 5), net.s2, net.c3, net.s4
        self.c5, self.f6 = torch.nn.Conv2d(16, 120, 5), net.f6
        self.c1.load_state_dict(net.c1.state_dict())
        self.c5.load_state_dict(net.c5.state_dict())

    def forward(self, x):
        for layer in (self.c1, self.s2, self.c3, self.s4, self.c5):
            x = 1.7159 * torch.tanh(layer(x) * (2.0 / 3.0))
        return 1.7159 * torch.tanh(self.f6(x.flatten(1)) * (2.0 / 3.0))


def epoch_seconds(model, x: torch.Tensor, targets: torch.Tensor, batch: int, threads: int,
                  foreach: bool, device: torch.device = torch.device("cpu")) -> float:
    """Seconds of one training epoch (SGD + momentum on MSE), best of two, at `threads` threads;
    as `train.fit` trains it (its fused numba step where that applies, see lenet.kernels.step)."""
    from lenet.kernels.step import source_step
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    model, x, targets = model.to(device), x.to(device), targets.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=foreach)
    fused = source_step(model, 0, 0.01, 0.9, batch, device)

    def epoch(n):
        for i in range(0, n, batch):
            if fused is not None:
                fused(x[i:i + batch], targets[i:i + batch])
                continue
            loss = F.mse_loss(model(x[i:i + batch]), targets[i:i + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    try:
        epoch(2 * batch)  # warm-up
        times = []
        for _ in range(2):
            _sync(device)
            t0 = time.perf_counter()
            epoch(len(x))
            _sync(device)
            times.append(time.perf_counter() - t0)
        return min(times)
    finally:
        torch.set_num_threads(before)


def source_epochs(x: torch.Tensor, codes: torch.Tensor, y: torch.Tensor,
                  device: torch.device = torch.device("cpu")) -> dict[str, float]:
    """Epoch seconds of the plain eager batch-128 baseline (at its best thread count) and of
    this project's source training (model.py's LeNet5 with C1..S4 in lenet.kernels.lanes, as
    net.train_source builds it, and fit's optimiser, the recipe's batch,
    one thread as the CLI and app run it), plus ours at batch 128 and the baseline's threads
    (the kernels alone)."""
    targets = codes[y]
    cores = os.cpu_count() or 1
    eager = {t: epoch_seconds(PlainLeNet5(), x, targets, 128, t, False, device) for t in sorted({1, cores})}
    best = min(eager, key=eager.get)
    return {"eager128": eager[best], "eager128_threads": best,
            "ours": epoch_seconds(LeNet5(seed=0, lanes=True), x, targets, SOURCE_RECIPE.batch_size, 1, True, device),
            "ours128": epoch_seconds(LeNet5(seed=0, lanes=True), x, targets, 128, best, True, device)}


def canvas(size: int = 280) -> np.ndarray:
    from PIL import Image, ImageDraw
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.line([(80, 60), (140, 220), (200, 60)], fill=(0, 0, 0, 255), width=18)  # a "V"
    d.line([(110, 140), (170, 140)], fill=(0, 0, 0, 255), width=18)
    return np.asarray(im)


def predict_ms(net: Net, reps: int = 200) -> tuple[float, float]:
    try:
        from lenet.drawing.canvas import canvas_to_image
    except ImportError:
        from lenet.ink.framing import frame_character

        def canvas_to_image(rgba):
            return frame_character(rgba[..., 3], ink_is_dark=False)
    rgba = canvas()
    net.rank(canvas_to_image(rgba))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        net.rank(canvas_to_image(rgba))
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def ui_poll_slowdown(x, y, codes, seconds: float = 4.0, device=None) -> float:
    """Training samples/s in a JobPool job without / with a thread polling snapshots 4x/s, minus one."""
    recipe = SOURCE_RECIPE.replace(max_epochs=10_000)
    pool = JobPool(1)

    def throughput(poll: bool) -> float:
        def work(job):
            stop = threading.Event()
            threading.Timer(seconds, stop.set).start()
            steps = []
            fit(LeNet5(seed=0), x, y, codes, recipe, on_step=lambda s, loss: (steps.append(s),
                job.record(step=s, loss=loss)), stop=stop, device=device)
            return len(steps) * recipe.batch_size / seconds
        job = pool.submit(work, "bench")
        done = threading.Event()

        def poller():
            while not done.wait(0.25):
                job.snapshot()
        if poll:
            threading.Thread(target=poller, daemon=True).start()
        job.wait()
        done.set()
        return job.snapshot().result

    rates = {False: [], True: []}
    for poll in (False, True, False, True):  # interleaved, best of two: machine noise hits both
        rates[poll].append(throughput(poll))
    return max(rates[False]) / max(rates[True]) - 1


def profile(steps: int = 50) -> str:
    """Where a training step's time goes (torch.profiler, one thread, random inputs): a group of
    5 stacked n=0 runs at the transfer recipe's batch, and the source net at its recipe's batch
    through PyTorch autograd (the fused numba steps that the fast path and fit run instead are one
    opaque call each: timed only)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    from lenet.grid.fast.stacked import StackedUpper
    from lenet.kernels.step import source_step as fused_step
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    group = StackedUpper([LeNet5(seed=i) for i in range(5)], 0)
    gx, gt = torch.randn(TRANSFER_RECIPE.batch_size, 5, 1, 32, 32), torch.randn(5, TRANSFER_RECIPE.batch_size, 20)
    net = LeNet5(seed=0, lanes=True)  # as net.train_source trains it
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, foreach=True)
    sx, st = torch.randn(SOURCE_RECIPE.batch_size, 1, 32, 32), torch.randn(SOURCE_RECIPE.batch_size, 20)

    def group_step():
        group.sgd_step(((group.forward(gx) - gt) ** 2).sum(), 0.01, 0.9)

    def source_step():
        loss = F.mse_loss(net(sx), st)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = []
    try:
        for name, step in ((f"5 stacked n=0 runs, batch {TRANSFER_RECIPE.batch_size}, PyTorch step", group_step),
                           (f"source net, batch {SOURCE_RECIPE.batch_size}, PyTorch step", source_step)):
            for _ in range(5):
                step()
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                t0 = time.perf_counter()
                for _ in range(steps):
                    step()
                ms = (time.perf_counter() - t0) / steps * 1e3
            out.append(f"{name}: {ms:.2f} ms per step (under the profiler)")
            out.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
        idx = torch.arange(5 * TRANSFER_RECIPE.batch_size).view(5, -1)
        weight = torch.full(idx.shape, 1.0 / (TRANSFER_RECIPE.batch_size * 20))
        gh, gtt = gx.transpose(0, 1).reshape(-1, 1, 32, 32), gt.reshape(5, TRANSFER_RECIPE.batch_size, 20)
        for _ in range(5):
            group.train_step(gh, idx, gtt, weight, 0.01, 0.9)
        if group.fused_step is not None:
            t0 = time.perf_counter()
            for _ in range(steps):
                group.train_step(gh, idx, gtt, weight, 0.01, 0.9)
            out.append(f"5 stacked n=0 runs, batch {TRANSFER_RECIPE.batch_size}, as the fast path trains them (one "
                       f"numba call per step, lenet.kernels.step): {(time.perf_counter() - t0) / steps * 1e3:.2f} ms per step")
        fused = fused_step(LeNet5(seed=0, lanes=True), 0, 0.01, 0.9, SOURCE_RECIPE.batch_size, torch.device("cpu"))
        if fused is not None:
            for _ in range(5):
                fused(sx, st)
            t0 = time.perf_counter()
            for _ in range(steps):
                fused(sx, st)
            out.append(f"source net, batch {SOURCE_RECIPE.batch_size}, as fit trains it (one numba call per step, "
                       f"lenet.kernels.step): {(time.perf_counter() - t0) / steps * 1e3:.2f} ms per step")
    finally:
        torch.set_num_threads(before)
    return "\n".join(out)


def study_runs(source: Net, ds, tgt, trials: int) -> dict:
    """The studies' runs (lenet.studies.common.build) one at a time through fit with gradient hooks (--plain)
    against the same runs grouped on the fast path (lenet.grid.fast.nets), both in this process on one
    thread: fine-tuned levels (AnB+, every level trained), kept C3 maps (a zero-scale mask), random frozen levels."""
    from lenet.studies.common import run_group, run_plain, shared_for, training_set
    from lenet.grid.cells import Cell, run_seed
    sets = {(k, t): training_set(ds, source, tgt, k, t, 0) for k in (1, 5) for t in range(trials)}
    plan = {"finetune": [{"n": n, "lr_mult": 0.1, "k": k, "trial": t, "seed": run_seed(0, Cell(n, k, t)), **sets[k, t]}
                         for n in (3, 5) for (k, t) in sets],
            "partial": [{"k": k, "trial": t, "kept": "0 2 4 6 8 10 12 14", "seed": run_seed(0, Cell(2, k, t)),
                         **sets[k, t]} for (k, t) in sets],
            "controls": [{"arm": "random-frozen", "n": 2, "k": k, "trial": t, "seed": run_seed(0, Cell(2, k, t)),
                          **sets[k, t]} for (k, t) in sets]}
    t_plain = t_fast = 0.0
    deltas = []
    for name, tasks in plan.items():
        shared = {**shared_for(source, ds, tgt, 0, TRANSFER_RECIPE, heldout=name == "finetune"), "study": name,
                  "level": "c3"}
        t0 = time.perf_counter()
        plain = [run_plain(shared, t) for t in tasks]
        t1 = time.perf_counter()
        fast = run_group(shared, {"tasks": tasks})
        t_plain, t_fast = t_plain + t1 - t0, t_fast + time.perf_counter() - t1
        deltas += [abs(a["target_acc"] - b["target_acc"]) for a, b in zip(plain, fast)]
    return {"study_ratio": round(t_plain / t_fast, 2), "study_plain_seconds": round(t_plain, 2),
            "study_fast_seconds": round(t_fast, 2), "study_runs": len(deltas),
            "study_max_acc_delta": round(max(deltas), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lenet bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--quick", action="store_true", help="a reduced sweep (1 trial) and shorter timings")
    p.add_argument("--workers", type=int, default=None, help="fast-path worker processes (default: 2)")
    p.add_argument("--profile", action="store_true", help="only print where a training step's time goes")
    p.add_argument("--device", choices=CHOICES, default=None,
                   help="where training runs: auto (CUDA when available), cpu or cuda (default: $LENET_DEVICE or auto)")
    args = p.parse_args(argv)
    try:
        dev = resolve(args.device)
    except ValueError as e:
        p.error(str(e))
    if args.profile:
        print(profile())
        return 0
    out: dict = {}
    say = (lambda m: None) if args.json else print
    emnist = find_emnist()
    ds = load("emnist") if emnist else load("synthetic")
    out["data"] = ds.source + ("" if emnist else " (EMNIST not found: synthetic)")
    out["device"] = describe(dev)
    src, tgt = default_class_split(ds, 0)  # the same characters as the shipped source nets
    out["peak_gflops"] = round(peak_gflops(device=dev), 1)
    say(f"peak_gflops {out['peak_gflops']}")
    source, how = get_source(ds, src, args.quick)
    out["source_net"] = how

    # plain vs fast on a reduced grid that keeps every n (and the paper's trials, which batch).
    # The plain loop trains one run at a time and runs the whole net every step, as plain
    # PyTorch would; the reference path (`reproduce --plain`) also caches the frozen levels.
    small = grid(PAPER_LEVELS, (1, 5), 1 if args.quick else PAPER_TRIALS)
    t0 = time.perf_counter()
    plain = [run_cell(source, ds, tgt, c, TRANSFER_RECIPE, 0, cache_frozen=False, device=dev) for c in small]
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    cached = [run_cell(source, ds, tgt, c, TRANSFER_RECIPE, 0, device=dev) for c in small]
    t_cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = run_cells(source, ds, tgt, small, TRANSFER_RECIPE, 0, workers=args.workers, device=dev, ray_address="")
    t_fast = time.perf_counter() - t0
    by_cell = {r.cell: r for r in fast}
    deltas = [abs(by_cell[r.cell].test_acc - r.test_acc) for r in plain + cached]
    out.update(sweep_ratio=round(t_plain / t_fast, 2), plain_seconds=round(t_plain, 2),
               sweep_ratio_vs_reference=round(t_cached / t_fast, 2), reference_seconds=round(t_cached, 2),
               fast_seconds=round(t_fast, 2), max_acc_delta=round(max(deltas), 4),
               identical_runs=f"{sum(d == 0 for d in deltas)}/{len(deltas)}")
    say(f"sweep_ratio {out['sweep_ratio']} (plain {t_plain:.1f} s / fast {t_fast:.1f} s on {len(small)} runs; "
        f"reference path with cached frozen levels {t_cached:.1f} s: ratio {out['sweep_ratio_vs_reference']}), "
        f"max_acc_delta {out['max_acc_delta']}, identical {out['identical_runs']}")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the study workers train
    out.update(study_runs(source, ds, tgt, 1 if args.quick else 2))
    torch.set_num_threads(threads)
    say(f"study_ratio {out['study_ratio']} (the studies' runs one at a time through fit {out['study_plain_seconds']:.1f} s"
        f" / grouped on the fast path {out['study_fast_seconds']:.1f} s, {out['study_runs']} runs, one thread), "
        f"study_max_acc_delta {out['study_max_acc_delta']}")

    trials = 1 if args.quick else PAPER_TRIALS
    cells = grid(PAPER_LEVELS, PAPER_SAMPLES, trials)
    t0 = time.perf_counter()
    results = run_cells(source, ds, tgt, cells, TRANSFER_RECIPE, 0, workers=args.workers, device=dev, ray_address="")
    out["sweep_seconds"] = round(time.perf_counter() - t0, 2)
    out["sweep_runs"] = len(cells)
    gflop = sweep_flops(results, len(tgt), 50 * len(tgt)) / 1e9
    out["sweep_gflop"] = round(gflop, 1)
    out["fraction_of_peak"] = round(gflop / out["sweep_seconds"] / out["peak_gflops"], 3)
    say(f"sweep_seconds {out['sweep_seconds']} ({len(cells)} runs), {gflop:.1f} GFLOP useful, "
        f"fraction_of_peak {out['fraction_of_peak']}")

    split = source_split(ds, src, per_class=400, heldout_per_class=100)
    x, y = to_net_input(split.train.images), torch.from_numpy(split.train.labels)
    ep = source_epochs(x, source.codes, y, dev)
    out.update(source_epoch_ratio=round(ep["eager128"] / ep["ours"], 2),
               source_epoch_eager128_s=round(ep["eager128"], 2), source_epoch_eager128_threads=ep["eager128_threads"],
               source_epoch_ours_s=round(ep["ours"], 2),
               source_epoch_ratio_same_batch=round(ep["eager128"] / ep["ours128"], 2))
    say(f"source_epoch_ratio {out['source_epoch_ratio']} (plain eager batch 128, {ep['eager128_threads']} "
        f"thread(s), {ep['eager128']:.2f} s / ours at the recipe's batch {SOURCE_RECIPE.batch_size}, 1 thread, "
        f"{ep['ours']:.2f} s per epoch of {len(x)}); at batch 128 both: {out['source_epoch_ratio_same_batch']}")

    p50, p95 = predict_ms(source)
    out.update(predict_p50_ms=round(p50, 2), predict_p95_ms=round(p95, 2))
    say(f"predict_p50_ms {p50:.2f}, predict_p95_ms {p95:.2f}")

    sub = slice(0, 2000)
    out["ui_poll_slowdown"] = round(ui_poll_slowdown(x[sub], y[sub], source.codes,
                                                     2.0 if args.quick else 4.0, dev), 3)
    say(f"ui_poll_slowdown {out['ui_poll_slowdown']}")
    if args.json:
        print(json.dumps(out))
    return 0 if all(math.isfinite(v) for v in out.values() if isinstance(v, float)) else 1
