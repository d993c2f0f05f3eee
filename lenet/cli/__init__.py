"""`python -m lenet ...`: Table 1, the source net, the paper's experiment, data and benchmarks.

Every bad input ends with one `error: ...` line on stderr and exit code 2, before any work.
With --json, stdout holds exactly one JSON object; progress always goes to stderr.
commands.py holds what each command does, parser.py its flags and help; this module runs one.
"""
from __future__ import annotations

import argparse
import sys

import torch

from lenet import settings
from lenet.cli.commands import EXIT_ERROR, CliError, _err, cmd_bench
from lenet.cli.parser import build_parser

__all__ = ["EXIT_ERROR", "CliError", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    from lenet.core.checkpoint import ModelFileError
    from lenet.data import DataError
    from lenet.core.train import TrainingError

    argv = sys.argv[1:] if argv is None else list(argv)
    # LeNet-5 at small batches gains nothing from a second thread, and two
    # threads fighting other work on 2 cores run many times slower.
    torch.set_num_threads(settings.threads())
    try:
        if argv[:2] == ["bench", "drawn"]:  # the drawn-characters benchmark (lenet.drawing.drawn)
            from lenet.drawing import drawn
            return drawn.main(argv[2:])
        if argv[:2] == ["bench", "drawn-mix"]:  # choosing the source net's drawn copies (lenet.drawing.choose)
            from lenet.drawing import choose
            return choose.main(argv[2:])
        if argv[:2] == ["bench", "teach-drawn"]:  # Teach's augmentation measured (lenet.drawing.taught)
            from lenet.drawing import taught
            return taught.main(argv[2:])
        if argv[:2] == ["bench", "oneshot"]:  # Omniglot's one-shot benchmark (lenet.studies.oneshot)
            from lenet.studies import oneshot
            return oneshot.main(argv[2:])
        if argv[:1] == ["bench"]:  # everything after `bench` belongs to lenet.bench's own parser
            return cmd_bench(argparse.Namespace(bench_args=argv[1:]))
        args = build_parser().parse_args(argv)
        return args.fn(args) or 0
    except (CliError, DataError, ModelFileError, TrainingError, ValueError, OSError) as e:
        _err(f"error: {_one_line(e)}")
    except KeyboardInterrupt as e:
        _err(f"error: {_one_line(e) or 'interrupted'}")
    return EXIT_ERROR


def _one_line(e: BaseException) -> str:
    text = str(e)
    if isinstance(e, OSError) and e.filename and e.strerror:
        text = f"{e.filename}: {e.strerror}"
    return " ".join(text.split())
