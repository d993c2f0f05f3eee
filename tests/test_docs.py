"""The README and docs/ say only what is true of this tree: links that resolve, commands the CLI has,
paths that exist, every setting documented and no other, the folder tree of docs/architecture.md
equal to the real one, and a README that fits on a few screens."""
from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest

from lenet import settings
from lenet.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "assets" / "README.md"]
README_MAX_LINES = 150
REPO_DIRS = ("lenet/", "ui/", "app_pages/", "scripts/", "assets/", "tests/", "docs/")

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
COMMAND = re.compile(r"python -m lenet((?: +[^\s`#|]+)*)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SETTING = re.compile(r"\bLENET_[A-Z0-9_]+")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def prose(text: str) -> str:
    """The text without fenced code blocks (links and headings there are not links or headings)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for _, title in HEADING.findall(prose(path.read_text())):
        s = slug(title)
        n = seen.get(s, 0)
        seen[s] = n + 1
        found.add(s if n == 0 else f"{s}-{n}")
    return found


def broken_links(files: list[Path]) -> list[str]:
    problems = []
    for f in files:
        for target in LINK.findall(INLINE_CODE.sub("", prose(f.read_text()))):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not this tree's
                continue
            name, _, anchor = target.partition("#")
            dest = (f.parent / name).resolve() if name else f
            if not dest.exists():
                problems.append(f"{rel(f)}: link to {target}: {name} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{rel(f)}: link to {target}: no heading #{anchor} in {rel(dest)}")
    return problems


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings}


def _help_options(main) -> set[str]:
    """The options of a command with its own parser, read from its --help: `bench` (lenet.bench.main)
    and `bench drawn`, `bench drawn-mix`, `bench teach-drawn` (lenet.drawing), which cli.main hands
    their arguments to."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    return set(FLAG.findall(out.getvalue())) | {"-h"}


def placeholder(word: str) -> bool:
    """NAME, DIR, ... and [--option] stand for what the reader types."""
    return word.startswith(("[", "<", "{")) or word.strip(".") == "" or word.isupper() or word == "|"


def bad_commands(files: list[Path]) -> list[str]:
    """Every `python -m lenet COMMAND [SUBCOMMAND] --flags` names a real command and its real options."""
    top = build_parser()
    commands = _subparsers(top)
    problems = []
    for f in files:
        for m in COMMAND.finditer(f.read_text()):
            words = []
            for w in m.group(1).split():  # the command ends where prose goes on ("recipes: candidate ...")
                words.append(w.rstrip(":,;"))
                if w != words[-1]:
                    break
            where = f"{rel(f)}: `python -m lenet{m.group(1)}`"
            if not words or placeholder(words[0]):
                continue
            if words[0].startswith("-"):
                if words[0] not in _options(top):
                    problems.append(f"{where}: python -m lenet has no option {words[0]}")
                continue
            if words[0] not in commands:
                problems.append(f"{where}: no command {words[0]!r} (commands: {', '.join(commands)})")
                continue
            parser, rest = commands[words[0]], words[1:]
            if words[0] == "bench":
                from lenet import bench
                from lenet.drawing import choose, drawn, taught
                mains = {"drawn": drawn.main, "drawn-mix": choose.main, "teach-drawn": taught.main}
                own = mains.get(rest[0]) if rest else None
                options = _help_options(own or bench.main)
                rest = rest[1:] if own else rest
            else:
                nested = _subparsers(parser)
                if nested and rest and not rest[0].startswith("-") and not placeholder(rest[0]):
                    if rest[0] not in nested:
                        problems.append(f"{where}: {words[0]} has no subcommand {rest[0]!r}")
                        continue
                    parser, rest = nested[rest[0]], rest[1:]
                positional = [a for a in parser._actions if not a.option_strings and a.choices]
                if positional and rest and not rest[0].startswith("-") and not placeholder(rest[0]):
                    if rest[0] not in positional[0].choices:
                        problems.append(f"{where}: {rest[0]!r} is not one of {', '.join(positional[0].choices)}")
                options = _options(parser)
            for flag in FLAG.findall(" ".join(rest)):
                if flag not in options:
                    problems.append(f"{where}: {words[0]} has no option {flag}")
    return problems


def missing_paths(files: list[Path]) -> list[str]:
    """Every repo path in backticks exists (`<...>` matches anything; numba's __pycache__ is made on first
    use, so its folder's parent must exist)."""
    problems = []
    for f in files:
        for code in INLINE_CODE.findall(prose(f.read_text())):
            path = code.strip().rstrip(".,:;")
            if not path.startswith(REPO_DIRS) or " " in path:
                continue
            path = path.rstrip("/").removesuffix("/__pycache__")
            pattern = re.sub(r"<[^>]*>", "*", path)
            if not (list(ROOT.glob(pattern)) if "*" in pattern else (ROOT / path).exists()):
                problems.append(f"{rel(f)}: `{code}` does not exist")
    return problems


def script_variables() -> set[str]:
    """LENET_* names a shell script defines for itself (`${NAME:-default}`), not the engine's settings."""
    return {m for s in (ROOT / "scripts").glob("*.sh") for m in re.findall(r"\$\{(LENET_[A-Z0-9_]+):-", s.read_text())}


def settings_problems(files: list[Path], page: Path) -> list[str]:
    """Every setting of lenet.settings.SETTINGS has its row in the page's table; no other LENET_* name is
    written anywhere in the docs (but a script's own variables)."""
    rows = set(re.findall(r"^\| `(LENET_[A-Z0-9_]+)` \|", page.read_text(), re.M))
    problems = [f"{rel(page)}: no table row for {name}" for name in settings.SETTINGS if name not in rows]
    allowed = set(settings.SETTINGS) | script_variables()
    for f in files:
        for name in sorted(set(SETTING.findall(f.read_text())) - allowed):
            problems.append(f"{rel(f)}: {name} is not a setting of lenet/settings.py")
    return problems


def tree_problems(page: Path) -> list[str]:
    """The folder tree in the page: every entry exists, and every module of lenet/, ui/ and app_pages/
    (packages' __init__.py optional) has its line."""
    text = page.read_text()
    block = re.search(r"^## The folder tree\n.*?^```\n(.*?)^```", text, re.M | re.S)
    if not block:
        return [f"{rel(page)}: no '## The folder tree' section with a code block"]
    listed, stack, problems = set(), [], []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        name = line.split()[0]
        stack[depth:] = [name.rstrip("/")]
        path = "/".join(stack)
        listed.add(path)
        if not (ROOT / path).exists():
            problems.append(f"{rel(page)}: the tree lists {path}, which does not exist")
    for pkg in ("lenet", "ui", "app_pages"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            if f.name != "__init__.py" and rel(f) not in listed:
                problems.append(f"{rel(page)}: the tree has no line for {rel(f)}")
    return problems


def test_links_resolve_to_files_and_headings():
    assert broken_links(DOCS) == []


def test_every_cli_command_in_the_docs_exists():
    assert bad_commands(DOCS) == []


def test_every_path_in_backticks_exists():
    assert missing_paths(DOCS) == []


def test_settings_are_documented_and_only_they():
    assert settings_problems(DOCS, ROOT / "docs" / "classroom.md") == []


def test_the_architecture_tree_is_the_real_tree():
    assert tree_problems(ROOT / "docs" / "architecture.md") == []


def test_readme_fits_on_a_few_screens():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}); move detail to docs/"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """Each check flags a planted fault, so a passing run means something."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](missing.md) [b](#no-such) [c](#title)\n\n"
                    "`python -m lenet reproduce --no-such-flag` `python -m lenet frobnicate`\n"
                    "`python -m lenet data nothing` `python -m lenet study nope --out DIR`\n"
                    "`lenet/no_such_module.py` `assets/source-<data>` LENET_NO_SUCH\n")
    assert len(broken_links([page])) == 2
    assert len(bad_commands([page])) == 4
    bench = tmp_path / "bench.md"
    bench.write_text("`python -m lenet bench --no-such` `python -m lenet bench drawn --no-such` "
                     "`python -m lenet bench drawn --quick`")
    assert len(bad_commands([bench])) == 2
    assert [p.split(": ")[-1] for p in missing_paths([page])] == ["`lenet/no_such_module.py` does not exist"]
    assert any("LENET_NO_SUCH" in p for p in settings_problems([page], page))
    assert any("no table row for LENET_HOME" in p for p in settings_problems([], page))
    tree = tmp_path / "tree.md"
    tree.write_text("## The folder tree\n\n```\nlenet/\n  nowhere.py   x\n```\n")
    problems = tree_problems(tree)
    assert any("lenet/nowhere.py, which does not exist" in p for p in problems)
    assert any("no line for lenet/cli/parser.py" in p for p in problems)


def test_slugs_are_githubs():
    assert slug("CLI, grid, fast path") == "cli-grid-fast-path"
    assert slug("The `bench drawn` benchmark") == "the-bench-drawn-benchmark"
    assert slug("GPU (untested on hardware)") == "gpu-untested-on-hardware"
