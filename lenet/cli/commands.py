"""The commands of `python -m lenet`: each a function of its parsed arguments (cmd_*), and the
progress lines they print on stderr. With --json, stdout holds exactly one JSON object.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from lenet.config import PAPER_LEVELS, SOURCE_RECIPE, TRANSFER_RECIPE
from lenet.data.protocol import new_characters

EXIT_ERROR = 2


class CliError(Exception):
    """A user-facing problem with the command line itself."""


class Progress:
    """A one-line progress bar with ETA on stderr (a line per update when stderr is not a terminal)."""

    def __init__(self, label: str, stream=None, header: str = ""):
        stream = stream or sys.stderr  # looked up now, not at import: tests and callers may redirect it
        self.label, self.stream, self.t0, self.first = label, stream, time.perf_counter(), None
        self.tty, self.header = stream.isatty(), header

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = done  # runs finished before this process started do not count for the ETA
            if self.header:  # printed once the work really starts, so an error stays the only line
                self.stream.write(self.header + "\n")
        elapsed = time.perf_counter() - self.t0
        rate = (done - self.first) / elapsed if elapsed > 0 else 0
        eta = f"ETA {_hms((total - done) / rate)}" if rate > 0 and done < total else ""
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        line = f"{self.label} [{bar:<30}] {done}/{total} {frac:4.0%} {_hms(elapsed)} {eta}".rstrip()
        self.stream.write(("\r" + line + ("\n" if done >= total else "")) if self.tty else line + "\n")
        self.stream.flush()


def _hms(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _emit(args, obj: dict, text: str) -> None:
    print(json.dumps(obj) if args.json else text, flush=True)


# --- commands ---------------------------------------------------------------------------------

def cmd_table1(args) -> None:
    from lenet.core.model import LeNet5, free_parameters
    from lenet.core.transfer import trainable_fraction

    counts = free_parameters(LeNet5())
    lines = ["free parameters (the paper's Table 1):"]
    lines += [f"  {name:<5} {v:>7,}" for name, v in counts.items()]
    lines += ["trainable share when the bottom n levels are retained:"]
    lines += [f"  n={n}  {trainable_fraction(n):6.1%}" for n in PAPER_LEVELS]
    _emit(args, counts, "\n".join(lines))


def _load_data(args):
    from lenet.data import load

    return load(args.data, args.data_dir)


def _names(classes) -> str:
    """Classes as one string: characters run together (ABC), names (Omniglot's) comma-separated."""
    classes = list(classes)
    return "".join(classes) if all(len(c) == 1 for c in classes) else ",".join(classes)


def _chars(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    # Omniglot's classes are names ("Korean/character05"): listed with commas
    chars = [c.strip() for c in text.split(",")] if "," in text or "/" in text else list(text)
    dups = sorted({c for c in chars if chars.count(c) > 1})
    if dups:
        raise ValueError(f"{what}: characters {''.join(dups)!r} are listed twice")
    return chars


def cmd_train_source(args) -> None:
    from lenet.core import checkpoint
    from lenet.data.protocol import check_classes, default_class_split, source_split
    from lenet.core.net import train_source

    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1 (got {args.epochs})")
    recipe = SOURCE_RECIPE.replace(seed=args.seed, max_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size)
    device = _device(args)
    ds = _load_data(args)
    classes = list(ds.classes) if args.classes == "all" else \
        _chars(args.classes, "--classes") or default_class_split(ds, args.seed)[0]
    check_classes(ds, classes, "--classes")
    split = source_split(ds, classes, args.per_class, args.heldout, args.seed)
    if args.distort:  # distorted copies of the training drawings only: the held-out ones stay unseen
        from lenet.data import CharacterSet
        from lenet.data.protocol import Split
        from lenet.ink.distort import distorted_copies
        images, labels = distorted_copies(split.train.images, split.train.labels, args.distort, args.seed)
        split = Split(CharacterSet(images, labels, split.train.classes, split.train.source, split.train.description),
                      split.test, split.classes)
    _err(f"source net: {len(classes)} characters {_names(classes)} x {args.per_class} from {ds.source}")
    extra, cfg = None, None
    if args.drawn and args.drawn_copies > 0:
        from dataclasses import replace
        from lenet.config import DRAWN_SOURCE
        from lenet.drawing.augment import drawn_copies
        cfg = replace(DRAWN_SOURCE, copies=args.drawn_copies)
        t0 = time.perf_counter()
        extra = drawn_copies(split.train, cfg, args.seed)
        _err(f"{len(extra):,} drawn copies of the training characters ({time.perf_counter() - t0:.0f} s)")

    def on_epoch(s):
        test = "" if s.test_acc is None else f", held-out acc {s.test_acc:.2%}"
        _err(f"epoch {s.epoch}: loss {s.train_loss:.4f}, train acc {s.train_acc:.2%}{test} ({s.seconds:.0f} s)")

    net, fit = train_source(split, recipe, on_epoch=on_epoch, device=device, extra=extra,
                            extra_meta=None if cfg is None else cfg.to_dict())
    calib = _calibrate(net, ds, classes, args) if args.drawn else None
    path = checkpoint.save(net, args.out)
    res = {"out": str(Path(args.out)), "model": str(path), "data": ds.source, "classes": _names(classes),
           "train_acc": fit.train_acc, "heldout_acc": fit.test_acc, "epochs": fit.epochs,
           "drawn_copies": 0 if extra is None else len(extra), "calibration": calib,
           "min_hamming": net.meta["min_hamming"], "seconds": round(fit.seconds, 1)}
    scored = " (its scanned characters)" if extra is not None else ""
    cal = "" if calib is None else (f"\ncalibrated on {calib['n']} validation characters (scanned and drawn): "
                                    f"temperature {calib['temperature']:.3f}, ECE {calib['ece']:.1%}")
    _emit(args, res, f"saved {path}\nclasses: {res['classes']}\n"
                     f"accuracy on its training set{scored}: {fit.train_acc:.2%} (paper: 94.38%)\n"
                     f"accuracy held out: {fit.test_acc:.2%}\nmin Hamming distance of the codes: "
                     f"{res['min_hamming']}{cal}")


def _calibrate(net, ds, classes, args) -> dict | None:
    """Fit the net's temperature on the source task's validation characters (beyond its training and
    held-out draws; for the synthetic set, whose 500 a class are all drawn, 40 a class rendered with
    another seed), as scanned and as one drawn copy each; None where the data has none to spare."""
    from dataclasses import replace

    import numpy as np
    from lenet.config import DRAWN_SOURCE
    from lenet.data.protocol import source_val
    from lenet.drawing.augment import drawn_copies

    val = source_val(ds, classes, args.per_class, args.heldout, args.seed)
    if len(val) < len(classes) and ds.source == "synthetic":  # all 500 used: fresh glyphs of another seed
        from lenet.data.protocol import relabel, rows_of
        from lenet.data.synthetic import load_synthetic
        more = load_synthetic(seed=args.seed + 1000, per_class=40)
        val = relabel(more, [rows_of(more, c) for c in classes], classes)
    if len(val) < len(classes):
        _err(f"not calibrated: {len(val)} validation characters beyond the training and held-out draws")
        return None
    drawn = drawn_copies(val, replace(DRAWN_SOURCE, copies=1.0), args.seed + 1)
    idx = {c: i for i, c in enumerate(net.classes)}
    y = np.array([idx[val.classes[l]] for l in val.labels])
    rep = net.calibrate(np.concatenate([val.images, drawn.images]), np.concatenate([y, y]))
    net.meta["calibration"] = {**rep, "on": f"{len(val)} validation characters, scanned and drawn"}
    return net.meta["calibration"]


def _device(args):
    """--device resolved before any work, so a missing GPU is the one error line."""
    from lenet.device import resolve

    return resolve(args.device)


def _check_ray(args) -> None:
    if args.ray:
        from lenet.grid.fast.ray_runner import connect
        connect(args.ray)  # an unreachable cluster or a missing Ray is the one error line, before any work


def _source_for(args, ds, seed: int | None = None, out: Path | None = None, device=None):
    """--source, else OUT/source from an earlier run, else a newly trained source net saved there
    (on the seed's default class split)."""
    from lenet.core import checkpoint
    from lenet.data.protocol import default_class_split, source_split
    from lenet.core.net import train_source

    seed = args.seed if seed is None else seed
    if args.source:
        return checkpoint.load(args.source), str(args.source)
    where = Path(args.out if out is None else out) / "source"
    if (where / checkpoint.WEIGHTS).exists():
        return checkpoint.load(where), str(where)
    classes = default_class_split(ds, seed)[0]
    _err(f"training a source net on {_names(classes)} (no --source given); it is saved in {where}")
    net, _ = train_source(source_split(ds, classes, seed=seed), SOURCE_RECIPE.replace(seed=seed), device=device,
                          on_epoch=lambda s: _err(f"  source epoch {s.epoch}: train acc {s.train_acc:.2%}"))
    checkpoint.save(net, where)
    return net, str(where)


def _grid_protocol(args) -> dict:
    """The grid's k and test and validation sizes: the flags, else the data set's
    (lenet.grid.experiment.grid_protocol)."""
    from lenet.grid.experiment import grid_protocol

    default = grid_protocol(args.data)
    sizes = {"samples": args.samples or list(default["samples"]),
             **{k: default[k] if getattr(args, k) is None else getattr(args, k)
                for k in ("test_per_class", "val_per_class")}}
    if sizes["test_per_class"] < 1 or sizes["val_per_class"] < 0:
        raise ValueError(f"--test-per-class must be >= 1 and --val-per-class >= 0 (got {sizes['test_per_class']} "
                         f"and {sizes['val_per_class']})")
    return sizes


def cmd_reproduce(args) -> None:
    from lenet.grid import experiment as E

    protocol = _grid_protocol(args)
    sizes = {k: protocol[k] for k in ("test_per_class", "val_per_class")}
    levels, samples, trials = E.check_grid(args.levels, protocol["samples"], args.trials)
    for flag, v in (("--epochs", args.epochs), ("--steps", args.steps)):
        if v is not None and v < 1:
            raise ValueError(f"{flag} must be >= 1 (got {v})")
    recipe = TRANSFER_RECIPE.replace(**({} if args.epochs is None else {"max_epochs": args.epochs}),
                                     **({} if args.steps is None else {"max_steps": args.steps}))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    seeds = list(dict.fromkeys(args.seeds)) if args.seeds else None
    if seeds is not None and any(s < 0 for s in seeds):
        raise ValueError(f"--seeds must be >= 0 (got {' '.join(map(str, args.seeds))})")
    targets = _chars(args.target_classes, "--target-classes")
    kinds = None
    if args.readouts is not None:
        from lenet.core.readouts import check_readouts
        kinds = check_readouts(args.readouts.split(","))
    device = _device(args)
    if args.ray and args.plain:
        raise ValueError("--ray sends the fast path's task groups to a cluster; it cannot go with --plain")
    _check_ray(args)
    if args.data == "omniglot" and not args.source:  # no Omniglot source net per split: the EMNIST one
        from lenet.core import checkpoint
        if checkpoint.shipped("emnist") is None:
            raise ValueError("--data omniglot transfers from the shipped EMNIST source net (assets/source-emnist), "
                             "which is missing here; give --source")
        args.source = str(checkpoint.shipped("emnist"))
    ds = _load_data(args)
    if targets is not None:  # every check that needs no source net, before one is trained
        E.check_targets(ds, targets, [], max(samples), **sizes)
    by_seed, results, readouts_table = {}, [], {}
    for seed in seeds or [args.seed]:
        where = out if seeds is None else E.seed_dir(out, seed)
        source, source_path = _source_for(args, ds, seed, where, device)
        chars, where_from = (targets, "") if targets else E.grid_targets(ds, source.classes, seed, args.twins)
        E.check_targets(ds, chars, source.classes, max(samples), **sizes)
        header = (f"{'' if seeds is None else f'seed {seed}: '}source net: {source_path} "
                  f"({_names(source.classes)})\ntarget classes{where_from}: {_names(chars)}")
        stop = threading.Event()
        try:
            results = E.reproduce(source, ds, chars, levels=levels, samples=samples, trials=trials, seed=seed,
                                  recipe=recipe, out_dir=where, fast=not args.plain, stop=stop,
                                  progress=Progress("runs", header=header), log=_err, device=device,
                                  ray_address=args.ray, **sizes)
        except KeyboardInterrupt:
            stop.set()
            raise KeyboardInterrupt(f"interrupted; finished runs are kept in {where / E.RUNS}, rerun to resume")
        by_seed[seed] = results
        if kinds is not None:
            readouts_table[seed] = _readouts(source, ds, chars, levels, samples, trials, seed, recipe, where,
                                             results, kinds, device, sizes)
    if seeds is None:
        summary = E.summarize(results)
        meta = json.loads((out / E.META).read_text())
        res = {"out": str(out), "runs": len(results), "complete": meta["complete"], "engine": meta["engine"],
               "source": source_path, "source_classes": _names(source.classes),
               "target_classes": _names(chars), "summary": summary}
        table = "\n".join(f"  n={r['n']} k={r['k']:<3} mean {r['mean']:.2%}  min {r['min']:.2%}  "
                          f"max {r['max']:.2%}  ({r['runs']} runs)" for r in summary)
        if kinds is not None:
            res["readouts"] = readouts_table[args.seed]
            table += "\nreadouts side by side (mean test accuracy; readouts.csv, readouts.html):\n" + \
                "\n".join(f"  n={r['n']} k={r['k']:<3} " + "  ".join(f"{k} {r[k]:.2%}" for k in kinds)
                          for r in res["readouts"])
        _emit(args, res, f"{len(results)} runs in {out} ({E.RUNS}, {E.SUMMARY}, {E.REPORT})\n{table}")
        return
    from lenet.report.claims import describe
    rows, claims = E.write_seed_outputs(out, by_seed)
    res = {"out": str(out), "seeds": seeds, "runs": sum(map(len, by_seed.values())), "across_seeds": rows,
           "claims": claims, "summary": {str(s): E.summarize(r) for s, r in by_seed.items()}}
    if kinds is not None:
        from lenet.grid import readouts as R
        res["readouts"] = {str(s): t for s, t in readouts_table.items()}
        res["readouts_across_seeds"] = R.write_seed_outputs(out, readouts_table, kinds)
    table = "\n".join(f"  n={r['n']} k={r['k']:<3} mean {r['mean']:.2%}  95% {r['ci_lo']:.2%}-{r['ci_hi']:.2%}  "
                      f"range {r['lo']:.2%}-{r['hi']:.2%}  ({r['seeds']} seeds, {r['runs']} runs, "
                      f"{r['capped']} capped)" for r in rows)
    ctext = "\n".join(f"  seed {c['seed']} {c['claim']:<9} {c['verdict']}: {describe(c)}" for c in claims)
    _emit(args, res, f"{res['runs']} runs in {out}/seed-* ({E.SEEDS}, {E.CLAIMS} across them)\n{table}\n"
                     f"claims:\n{ctext}")


def _readouts(source, ds, chars, levels, samples, trials, seed, recipe, where, results, kinds, device, sizes):
    """The other readouts on the grid's cells (lenet.grid.readouts); the side-by-side table, also written
    (readouts-summary.csv, readouts.html, and a section of report.html)."""
    from lenet.grid import experiment as E
    from lenet.grid import readouts as R
    from lenet.grid.cells import grid

    rows = R.run_readouts(source, ds, chars, grid(levels, samples, trials), kinds, seed=seed, recipe=recipe,
                          out_dir=where, progress=Progress("readouts"), device=device, **sizes)
    table = R.side_by_side(results, rows, kinds)
    R.write_outputs(where, table, kinds, grid=(results, json.loads((where / E.META).read_text())))
    return table


def cmd_tables(args) -> None:
    from lenet.grid import tables
    from lenet.studies import tables as study_tables

    if not (Path(args.results) / "claims.csv").exists():
        raise ValueError(f"--results {args.results}: no claims.csv (run reproduce with --seeds first)")
    if args.write:
        render = {**tables.renderers(args.results, args.twins), **study_tables.renderers(Path(args.studies))}
        changed = {str(f): tables.rewrite(f, render) for f in args.write}  # the grid's blocks and the studies
        _emit(args, {"changed": changed}, "\n".join(f"{f}: {', '.join(c) + ' rewritten' if c else 'up to date'}"
                                                  for f, c in changed.items()))
    else:
        text = tables.markdown("results", args.results, args.twins)
        _emit(args, {"markdown": text}, text)


def cmd_recipes(args) -> None:
    from lenet.grid import experiment as E
    from lenet.grid import recipes

    names = recipes.check_candidates(args.candidates)
    levels, samples, trials = E.check_grid(args.levels, args.samples, args.trials)
    device = _device(args)
    _check_ray(args)
    ds = _load_data(args)
    source, source_path = _source_for(args, ds, device=device)
    targets = new_characters(ds, source.classes, args.seed)
    E.check_targets(ds, targets, source.classes, max(samples))
    bars = {}

    def progress(name: str, done: int, total: int) -> None:
        bars.setdefault(name, Progress(name))(done, total)

    rows = recipes.compare(source, ds, targets, names, args.out, levels=levels, samples=samples, trials=trials,
                           seed=args.seed, progress=progress, log=_err, device=device, ray_address=args.ray)
    ks = [c for c in rows[0] if c.startswith("val_k")] if rows else []
    table = "\n".join(f"  {r['candidate']:<12} val {r['val_mean']:.2%}  " +
                      "  ".join(f"{c[4:]} {r[c]:.2%}" for c in ks) +
                      f"  epochs {r['epochs_mean']:.1f}  {r['seconds']:.0f} s   ({r['recipe']})" for r in rows)
    _emit(args, {"out": str(args.out), "source": source_path, "rows": rows},
          f"mean validation accuracy, best first ({Path(args.out) / recipes.COMPARISON}):\n{table}")


def cmd_study(args) -> None:
    from lenet.core import checkpoint
    from lenet import studies
    from lenet.data import find_emnist
    from lenet.grid.fast.ray_runner import address_from_env
    from lenet.studies.common import command_line

    names = list(studies.BY_COST) if args.name == "all" else [args.name]
    if args.name == "all" and not args.seeds:
        raise ValueError("study all needs --seeds (e.g. --seeds 0 1 2)")
    if args.preset and args.name == "all":
        raise ValueError("--preset is one study's: name the study (e.g. study source-classes --preset hundreds)")
    for name in names:
        mod = studies.get(name)
        studies.settings(name, args.seed, quick=args.quick, preset=args.preset)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1 (got {args.workers})")
    if args.seeds and args.source:
        raise ValueError("--seeds trains each split's own source net; it cannot take --source")
    if args.data is None:  # the real characters when they are here
        args.data = "emnist" if find_emnist(args.data_dir) is not None else "synthetic"
    _check_ray(args)
    source_path = args.source or checkpoint.shipped(args.data)
    if source_path is None and not args.seeds:
        raise CliError(f"no shipped source net for --data {args.data} (assets/source-{args.data} is missing); give --source")
    source = checkpoint.load(source_path) if source_path is not None else None
    ds = _load_data(args)
    stop = threading.Event()
    run = dict(stop=stop, workers=args.workers, ray=address_from_env(args.ray), plain=args.plain)
    try:
        if args.seeds:
            _study_splits(args, names, ds, out, run)
            return
        targets = new_characters(ds, source.classes, args.seed)
        command = command_line(args.name, quick=args.quick, seed=args.seed, data=args.data, data_dir=args.data_dir,
                               out=str(out), source=args.source, preset=args.preset)
        header = (f"study {args.name}{' (quick)' if args.quick else ''}"
                  f"{f' (preset {args.preset})' if args.preset else ''}: {mod.QUESTION}\n"
                  f"source net: {source_path} ({_names(source.classes)}); new characters: {_names(targets)}")
        rows = studies.run(args.name, studies.settings(args.name, args.seed, quick=args.quick, preset=args.preset),
                           source, ds, targets, out_dir=out, command=command,
                           progress=Progress("runs", header=header), log=_err, **run)
    except KeyboardInterrupt:
        stop.set()
        raise KeyboardInterrupt(f"interrupted; finished runs are kept in {out}, rerun to resume")
    fields = mod.SUMMARY_FIELDS
    table = "\n".join("  " + "  ".join(f"{f}={r[f]:.4f}" if isinstance(r[f], float) else f"{f}={r[f]}" for f in fields)
                      for r in rows)
    _emit(args, {"study": args.name, "out": str(out), "rows": rows},
          f"{args.name}: {len(rows)} rows in {out} (runs.csv, summary.csv, report.html)\n{table}")


def _study_splits(args, names, ds, out, run) -> None:
    """Each study on each split of --seeds (lenet.studies.splits), then its rows across the splits."""
    from lenet.studies.common import command_line
    from lenet.studies.splits import SPLITS, run_splits

    seeds = list(dict.fromkeys(args.seeds))
    res, lines = {"out": str(out), "seeds": seeds, "studies": {}}, []
    for name in names:
        t0 = time.perf_counter()
        seeds_text = " ".join(map(str, seeds))

        def command(seed, name=name):  # the split's own command; -1: the whole multi-split command
            if seed < 0:
                return (f"python -m lenet study {args.name}{' --quick' if args.quick else ''}"
                        f"{f' --preset {args.preset}' if args.preset else ''} --seeds {seeds_text} "
                        f"--data {args.data}" + (f" --data-dir {args.data_dir}" if args.data_dir else "") +
                        f" --out {out}")
            return command_line(name, quick=args.quick, seed=seed, data=args.data, data_dir=args.data_dir,
                                out=str(out / name / f"seed-{seed}"), preset=args.preset)
        rows = run_splits(name, seeds, ds, out, quick=args.quick, preset=args.preset, command=command, log=_err,
                          progress=Progress(f"{name} runs"), **run)
        res["studies"][name] = {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
        lines.append(f"{name}: {len(rows)} rows across {len(seeds)} splits in {out / name / SPLITS} "
                     f"({time.perf_counter() - t0:.0f} s)")
    _emit(args, res, "\n".join(lines))


def cmd_data_info(args) -> None:
    from lenet.data import info

    d = info(args.data, args.data_dir)
    counts = " ".join(f"{c}:{n}" for c, n in d["counts"].items())
    where = f" at {d['path']}" if d.get("path") else ""
    _emit(args, d, f"active: {d['active']}{where}\n{d['source']}: {d['description']}\n"
                   f"{d['n']:,} characters in {len(d['classes'])} classes\nper class: {counts}")


def cmd_data_subset(args) -> None:
    from lenet.data.subset import SUBSET_DIR, make_subset

    out = Path(args.out or SUBSET_DIR)
    prov = make_subset(args.data_dir, out, args.per_class, args.seed)
    size = sum((out / n).stat().st_size for n in prov["files"])
    _emit(args, {"out": str(out), "bytes": size, **prov},
          f"{prov['n']:,} characters in {out} ({size / 1e6:.2f} MB): {prov['what']}")


def cmd_data_download(args) -> None:
    from lenet.data.download import EMNIST_SIZE, EMNIST_URL, download_emnist

    bar = Progress("download")
    last = [0.0]

    def progress(have: int, total: int) -> None:  # throttled: a bar update per 0.5 s
        now = time.perf_counter()
        if now - last[0] > 0.5 or have >= total:
            last[0] = now
            bar(have >> 20, max(total, 1) >> 20)

    url = args.url or EMNIST_URL
    path = download_emnist(args.dest, url, EMNIST_SIZE if url == EMNIST_URL else None, progress)
    _emit(args, {"path": str(path)}, f"EMNIST is at {path}")


def cmd_bench(args) -> int:
    from lenet import bench

    return bench.main(args.bench_args) or 0


# --- wiring -----------------------------------------------------------------------------------
