"""The floor plan (lenet/layers.py): every import points down a layer, and no module imports
itself back through others. The checker is shown to fail on planted breaches."""
from __future__ import annotations

from pathlib import Path

from lenet.layers import LAYERS, check, layer_of, project_files

ROOT = Path(__file__).resolve().parents[1]


def test_the_project_keeps_its_floor_plan():
    problems = check(ROOT, project_files(ROOT))
    assert not problems, "\n".join(problems)


def test_every_package_of_lenet_is_on_a_layer():
    packages = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in ROOT.glob("lenet/*/__init__.py")}
    modules = {p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".") for p in ROOT.glob("lenet/*.py")}
    listed = {name for layer in LAYERS for name in layer}
    assert packages <= listed and modules - {"lenet.__init__"} <= listed


def _tree(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    out = []
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        out.append(p)
    return out


def test_a_planted_upward_import_is_found(tmp_path):
    files = _tree(tmp_path, {
        "lenet/__init__.py": "",
        "lenet/core/__init__.py": "",
        "lenet/core/model.py": "def f():\n    from lenet.grid.experiment import reproduce  # lazy, still upward\n",
        "lenet/grid/__init__.py": "",
        "lenet/grid/experiment.py": "from lenet.core.model import f\n",
    })
    problems = check(tmp_path, files)
    assert any("lenet.core.model imports lenet.grid.experiment: upward" in p for p in problems), problems
    assert any(p.startswith("import cycle: lenet.core.model <-> lenet.grid.experiment") for p in problems), problems


def test_a_cycle_inside_one_layer_and_through_a_package_init_is_found(tmp_path):
    # importing lenet.grid.fast.work runs lenet/grid/fast/__init__.py, which imports the importer back
    files = _tree(tmp_path, {
        "lenet/__init__.py": "",
        "lenet/grid/__init__.py": "",
        "lenet/grid/experiment.py": "from lenet.grid.fast.work import run\n",
        "lenet/grid/fast/__init__.py": "from lenet.grid.experiment import Cell\n",
        "lenet/grid/fast/work.py": "from . import helpers\n",
        "lenet/grid/fast/helpers.py": "",
    })
    problems = check(tmp_path, files)
    assert problems == ["import cycle: lenet.grid.experiment <-> lenet.grid.fast"], problems


def test_a_module_on_no_layer_is_reported(tmp_path):
    files = _tree(tmp_path, {"lenet/__init__.py": "", "lenet/newthing/__init__.py": ""})
    assert check(tmp_path, files) == ["lenet.newthing: not on any layer of lenet/layers.py"]


def test_lenet_names_only_its_own_init():
    assert layer_of("lenet") == layer_of("lenet.cli") > layer_of("lenet.runtime.jobs") > layer_of("lenet.config")
    assert layer_of("lenet.nothing_listed") is None

