"""The house's arrows: the backend never imports the front end, the model knows no text, nothing imports cli."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "charlm"
APP = PACKAGE.parent / "app"
MODULES = sorted(PACKAGE.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a file imports, anywhere in it (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:                                  # from .corpus import Vocab -> charlm.text.corpus
                base = "charlm" + ("." + node.module if node.module else "")
                names.add(base)
                if not node.module:                         # from . import checkpoint -> charlm.modelfile.checkpoint
                    names.update(f"charlm.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def test_the_package_has_the_modules_the_house_plan_names():
    names = {path.stem for path in MODULES}
    assert {"model", "decoding", "checkpoint", "train", "jobs", "cli", "corpus", "device", "presets"} <= names


def test_imported_modules_sees_relative_and_nested_imports():
    # The checks below rely on this parser; it must see every form of import the package uses.
    imports = imported_modules(PACKAGE / "cli.py")
    assert {"charlm.presets", "charlm.text.corpus", "charlm.train.trainer", "charlm.engine.decoding", "argparse"} <= imports
    assert "charlm.modelfile.checkpoint" in imported_modules(PACKAGE / "train.py")   # from . import checkpoint


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_charlm_module_imports_streamlit(path):
    assert not any(name.split(".")[0] == "streamlit" for name in imported_modules(path))


def test_model_imports_nothing_from_corpus_decoding_or_train():
    imports = imported_modules(PACKAGE / "model.py")
    assert not imports & {"charlm.text.corpus", "charlm.engine.decoding", "charlm.train.trainer", "charlm.modelfile.checkpoint", "charlm.train.jobs"}
    # Only its numpy twin, which knows no text either.
    assert {name for name in imports if name.startswith("charlm")} <= {"charlm.engine.arrays", "charlm.config"}


@pytest.mark.parametrize("name", ["arrays", "sampling"])
def test_the_numpy_modules_import_no_torch_and_nothing_else_of_charlm(name):
    imports = imported_modules(PACKAGE / f"{name}.py")
    assert not any(n.split(".")[0] in ("torch", "streamlit") for n in imports)
    # Only the stop check their long loops share (charlm.workload, which imports nothing itself).
    assert {n for n in imports if n.startswith("charlm")} <= {"charlm.workload"}


def test_the_work_bound_imports_nothing_of_charlm_numpy_or_torch():
    imports = imported_modules(PACKAGE / "workload.py")
    assert not any(n.split(".")[0] in ("torch", "streamlit", "numpy", "charlm") for n in imports)


@pytest.mark.parametrize("name", ["config", "presets", "units", "text"])
def test_the_plain_modules_import_no_torch(name):
    # Configs, presets, durations and text checks are read before torch loads (a file's config, the CLI's options).
    assert not any(n.split(".")[0] in ("torch", "streamlit") for n in imported_modules(PACKAGE / f"{name}.py"))


# What Learn computes for its pages: numpy only, so a page draws from them without waiting for torch.
LEARN_COMPUTATIONS = ["anatomy", "scoring", "neurons", "baselines", "copying", "textstats", "guessing"]


def test_learn_computations_load_no_torch():
    code = (f"import sys, {', '.join('charlm.' + name for name in LEARN_COMPUTATIONS)}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'streamlit')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_one_place_says_each_figure_for_people():
    # LN2, the duration format and the core count each live in one module; a second copy drifts from the first.
    sources = {path: path.read_text(encoding="utf-8")
               for path in [*MODULES, *sorted(APP.glob("*.py")), *sorted(APP.glob("learn/*.py"))]}
    assert [p.name for p, text in sources.items() if re.search(r"^LN2 *=", text, re.MULTILINE)] == ["units.py"]
    assert [p.name for p, text in sources.items() if "def format_duration" in text] == ["units.py"]
    assert [p.name for p, text in sources.items() if "sched_getaffinity" in text] == ["device.py"]


def test_the_trainer_takes_configs_and_only_presets_turn_a_preset_into_them():
    imports = {path.stem: imported_modules(path) for path in MODULES}
    users = sorted(name for name, names in imports.items() if "charlm.presets" in names)
    assert users == ["cli"]                           # the CLI picks a preset by name; train, jobs, estimate take configs


@pytest.mark.parametrize("path", [p for p in MODULES if p.stem not in ("cli", "__main__")], ids=lambda p: p.name)
def test_nothing_imports_cli(path):
    assert "charlm.cli.main" not in imported_modules(path)


def test_importing_the_whole_backend_loads_no_streamlit():
    code = ("import sys, charlm.train.trainer, charlm.train.jobs, charlm.engine.decoding, charlm.modelfile.checkpoint, charlm.cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'))")
    run = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
