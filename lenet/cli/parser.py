"""The command line's grammar: every command, flag and help text of `python -m lenet`."""
from __future__ import annotations

import argparse

from lenet import settings
from lenet.cli import commands
from lenet.cli.commands import CliError
from lenet.config import (
    DRAWN_SOURCE, OMNIGLOT_SAMPLES, OMNIGLOT_TEST_PER_CLASS, OMNIGLOT_VAL_PER_CLASS, PAPER_LEVELS, PAPER_SAMPLES,
    PAPER_TRIALS, RECIPE_CANDIDATES, SOURCE_RECIPE, TRANSFER_RECIPE,
)
from lenet.data.protocol import TWIN_RULES


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        raise CliError(f"{self.prog}: {message}")


def _device_arg(p) -> None:
    from lenet.device import CHOICES, ENV

    p.add_argument("--device", choices=CHOICES, default=None,
                   help=f"where to train: auto (CUDA when available), cpu or cuda (default: ${ENV} or auto)")


def _ray_arg(p) -> None:
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run the task groups on the Ray cluster at ADDRESS (head host:port, ray://host:10001, "
                        "auto or local; default: $LENET_RAY, else local processes)")


def _data_args(p, required=True) -> None:
    from lenet.data import KINDS

    p.add_argument("--data", choices=KINDS, required=required,
                   help="character set: synthetic (built in), emnist (downloaded), sd19 (NIST folder), omniglot "
                        "(the background alphabets; the archives in assets/omniglot) or emnist+omniglot (both: "
                        "EMNIST's classes at 20 drawings each, a background for source nets)")
    p.add_argument("--data-dir", help="folder or zip with the data (default: the usual places)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lenet", description="LeNet Transfer Lab: Gutstein et al.'s knowledge-transfer experiments.",
                epilog="environment (docs/classroom.md):\n" + settings.describe(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("table1", help="free parameters per layer (the paper's Table 1)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(fn=commands.cmd_table1)

    s = sub.add_parser("train-source", help="train a source net and save it")
    _data_args(s)
    s.add_argument("--out", required=True, help="folder to save the net in (model.safetensors + config.json)")
    s.add_argument("--classes", help="source characters, e.g. ABCD..., names separated by commas (Omniglot's "
                   "Korean/character05,...), or all (default: a seeded pick of 20)")
    s.add_argument("--seed", type=int, default=0, help="seed of the class pick, samples, init and codes")
    s.add_argument("--epochs", type=int, default=SOURCE_RECIPE.max_epochs, help="passes over the training set")
    s.add_argument("--lr", type=float, default=SOURCE_RECIPE.lr, help="SGD learning rate")
    s.add_argument("--batch-size", type=int, default=SOURCE_RECIPE.batch_size, help="mini-batch size")
    s.add_argument("--per-class", type=int, default=400, help="training samples per character (paper: 400)")
    s.add_argument("--heldout", type=int, default=100, help="held-out samples per character for testing")
    s.add_argument("--distort", type=int, default=0, metavar="COPIES",
                   help="add this many random affine distortions of each training drawing (lenet.ink.distort; "
                        "for Omniglot's 20 drawers; default 0: none, the paper's)")
    s.add_argument("--drawn", action=argparse.BooleanOptionalAction, default=True,
                   help="train on drawn copies of the training characters too (lenet.drawing.augment, "
                        "config.DRAWN_SOURCE: read drawings as well as scans) and calibrate on validation "
                        "characters where the data has them; --no-drawn: the paper's plain source net")
    s.add_argument("--drawn-copies", type=float, default=DRAWN_SOURCE.copies, metavar="C",
                   help=f"drawn copies per training character (default {DRAWN_SOURCE.copies:g}, chosen by "
                        "`bench drawn-mix` on validation characters)")
    _device_arg(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(fn=commands.cmd_train_source)

    r = sub.add_parser("reproduce", help="run the paper's grid of transfer experiments (resumable)")
    _data_args(r)
    r.add_argument("--levels", type=int, nargs="+", default=list(PAPER_LEVELS), help="retained levels n (0..5)")
    r.add_argument("--samples", type=int, nargs="+",
                   help=f"samples per class k (default: the paper's {' '.join(map(str, PAPER_SAMPLES))}; "
                        f"on omniglot {' '.join(map(str, OMNIGLOT_SAMPLES))})")
    r.add_argument("--trials", type=int, default=PAPER_TRIALS, help="trials per (n, k)")
    r.add_argument("--test-per-class", type=int,
                   help=f"test characters per new character, fixed per split (default 50, the paper's; on omniglot "
                        f"{OMNIGLOT_TEST_PER_CLASS} of its 20 drawers)")
    r.add_argument("--val-per-class", type=int,
                   help=f"validation characters per new character and trial (default 20; on omniglot "
                        f"{OMNIGLOT_VAL_PER_CLASS}); k + test + validation must fit the drawings of each")
    r.add_argument("--seed", type=int, default=0, help="seed of classes, samples and initialisations")
    r.add_argument("--seeds", type=int, nargs="+",
                   help="several class splits: one grid per seed in OUT/seed-S (each with its own source net "
                        "in OUT/seed-S/source unless --source), then seeds.csv and claims.csv across them")
    r.add_argument("--source", help="source net folder or .safetensors (default: OUT/source, trained if absent; "
                                    "on omniglot the shipped EMNIST net, assets/source-emnist)")
    r.add_argument("--target-classes", help="the new characters (default: 20 not in the source net; on omniglot 20 "
                                            "of one alphabet, chosen by the seed: docs/omniglot.md)")
    r.add_argument("--twins", choices=TWIN_RULES, default="avoid",
                   help="avoid (default): no new character is a twin of a source character (lenet.data.twins); "
                        "allow: the older pick that ignores twins, to measure their effect")
    r.add_argument("--steps", type=int,
                   help=f"training budget in SGD steps per run (default {TRANSFER_RECIPE.max_steps})")
    r.add_argument("--epochs", type=int, help=f"max epochs per run (default {TRANSFER_RECIPE.max_epochs})")
    r.add_argument("--plain", action="store_true", help="use the plain reference loop, not lenet.grid.fast")
    r.add_argument("--readouts", metavar="LIST",
                   help="also read the new characters out another way on the same cells, comma-separated: mse "
                        "(the paper's, the grid itself), ce, centroid, probe (lenet/core/readouts.py); written to "
                        "readouts.csv, readouts-summary.csv and readouts.html (default: mse only, as before)")
    r.add_argument("--out", required=True, help="output folder: runs.csv, summary.csv, report.html, meta.json")
    _device_arg(r)
    _ray_arg(r)
    r.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    r.set_defaults(fn=commands.cmd_reproduce)

    tb = sub.add_parser("tables", help="the result tables of the README and docs from the shipped CSVs")
    tb.add_argument("--results", default="assets/results-emnist", help="a reproduce --seeds folder (twin-free)")
    tb.add_argument("--twins", default="assets/results-emnist-twins",
                    help="the same seeds reproduced with --twins allow, for the with-twins comparison")
    tb.add_argument("--studies", default="assets/results-studies",
                    help="a study all --seeds folder, for the studies' blocks (docs/studies.md, README.md)")
    tb.add_argument("--write", nargs="+", metavar="FILE",
                    help="rewrite the result blocks these files hold (README.md docs/reproduction.md "
                         "docs/omniglot.md) instead of printing the tables")
    tb.add_argument("--json", action="store_true", help="print one JSON object")
    tb.set_defaults(fn=commands.cmd_tables)

    from lenet.studies import NAMES as STUDIES
    st = sub.add_parser("study", help="a question the paper left open, as a resumable study (lenet.studies)")
    st.add_argument("name", choices=(*STUDIES, "all"), help="which study (all: every one, in turn)")
    st.add_argument("--quick", action="store_true", help="the small version (about 10 s on 2 idle cores)")
    st.add_argument("--preset", help="other settings the study names (source-classes: hundreds, S up to 200 "
                                     "with the Omniglot background characters in the source pool)")
    st.add_argument("--seed", type=int, default=0, help="seed of classes, samples and initialisations")
    st.add_argument("--seeds", type=int, nargs="+",
                    help="several class splits, as reproduce --seeds: OUT/NAME/seed-S each (its own source net, "
                         "trained in OUT/sources/seed-S unless shipped), then OUT/NAME/splits.csv across them")
    st.add_argument("--plain", action="store_true",
                    help="train every run through the plain fit, one at a time (the reference for the fast path)")
    _data_args(st, required=False)
    st.add_argument("--source", help="source net folder (default: the shipped one for --data)")
    st.add_argument("--workers", type=int, help="worker processes (default: up to 2)")
    _ray_arg(st)
    st.add_argument("--out", required=True, help="output folder: runs.csv, summary.csv, report.html, meta.json")
    st.add_argument("--json", action="store_true", help='print {"study", "out", "rows"} as one JSON object')
    st.set_defaults(fn=commands.cmd_study)

    rc = sub.add_parser("recipes", help="compare candidate transfer recipes on validation accuracy (resumable)")
    _data_args(rc)
    rc.add_argument("--candidates", nargs="+", default=list(RECIPE_CANDIDATES),
                    help=f"candidates from lenet/config.py (default: all: {' '.join(RECIPE_CANDIDATES)})")
    rc.add_argument("--levels", type=int, nargs="+", default=list(PAPER_LEVELS), help="retained levels n (0..5)")
    rc.add_argument("--samples", type=int, nargs="+", default=list(PAPER_SAMPLES), help="samples per class k")
    rc.add_argument("--trials", type=int, default=2, help="trials per (n, k) and candidate")
    rc.add_argument("--seed", type=int, default=0, help="seed of classes, samples and initialisations")
    rc.add_argument("--source", help="source net folder or .safetensors (default: OUT/source, trained if absent)")
    rc.add_argument("--out", required=True, help="output folder: a reproduction per candidate, comparison.csv")
    _device_arg(rc)
    _ray_arg(rc)
    rc.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    rc.set_defaults(fn=commands.cmd_recipes)

    d = sub.add_parser("data", help="inspect or download character data")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    i = dsub.add_parser("info", help="what is found: source, description, counts per class")
    _data_args(i)
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(fn=commands.cmd_data_info)
    sb = dsub.add_parser("subset", help="make the compact EMNIST subset that ships in assets/emnist-subset")
    sb.add_argument("--data-dir", help="the full EMNIST release, a folder or gzip.zip (default: the usual places)")
    sb.add_argument("--per-class", type=int, default=500, help="at most this many characters per class")
    sb.add_argument("--seed", type=int, default=0, help="seed of the pick")
    sb.add_argument("--out", help="folder to write (default: the project's assets/emnist-subset)")
    sb.add_argument("--json", action="store_true", help="print one JSON object")
    sb.set_defaults(fn=commands.cmd_data_subset)
    dl = dsub.add_parser("download", help="download a data set")
    dl.add_argument("what", choices=["emnist"], help="the data set to download")
    dl.add_argument("--dest", help="destination folder (default: the cache)")
    dl.add_argument("--url", help="download from this URL instead of NIST's")
    dl.add_argument("--json", action="store_true", help="print one JSON object")
    dl.set_defaults(fn=commands.cmd_data_download)

    b = sub.add_parser("bench", help="benchmarks (lenet.bench); arguments are passed on", add_help=False)
    b.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for lenet.bench")
    b.set_defaults(fn=commands.cmd_bench, json=False)
    return p
