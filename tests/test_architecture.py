"""The house's plan as tests, by folder: what each package may import, the reading half without torch,
nothing importing the CLI, pages importing no page, and modules and functions short enough to read."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import NO_TORCH_HOOK

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "charlm"
APP = ROOT / "app"
BASE = "base"   # the modules at charlm/'s top: configs, presets, units, files, the work bound, errors

# What each part of charlm may import of charlm, by folder. The reading half (text, modelfile, engine, learn)
# and the base import no torch; nn, train and cli are torch's side. Nothing but cli imports cli.
MAY_IMPORT = {
    BASE: {BASE},
    "text": {BASE, "text"},
    "modelfile": {BASE, "text", "modelfile"},
    "engine": {BASE, "text", "modelfile", "engine"},
    "learn": {BASE, "text", "modelfile", "engine", "learn"},
    "nn": {BASE, "text", "modelfile", "engine", "nn"},
    "train": {BASE, "text", "modelfile", "engine", "nn", "train"},
    "cli": {BASE, "text", "modelfile", "engine", "learn", "nn", "train", "cli"},
}
WITHOUT_TORCH = [BASE, "text", "modelfile", "engine", "learn"]
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 70


def part_of(path: Path) -> str:
    """The folder a charlm module belongs to: its package under charlm/, or the base."""
    relative = path.relative_to(PACKAGE)
    if relative.parts == ("__main__.py",):   # python -m charlm: the command line's door
        return "cli"
    return relative.parts[0] if len(relative.parts) > 1 else BASE


def part_named(module: str) -> str | None:
    """The folder of an imported charlm module name (charlm.text.corpus -> text, charlm.units -> base)."""
    parts = module.split(".")
    if parts[0] != "charlm":
        return None
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return BASE


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a file imports, anywhere in it (inside functions and TYPE_CHECKING too),
    with `from charlm.text import corpus` read as charlm.text.corpus."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:                       # from . import state (app/) -> app.state
                package = path.relative_to(ROOT).parent.parts[:len(path.relative_to(ROOT).parent.parts) - node.level + 1]
                module = ".".join([*package, *([module] if module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names
                         if (ROOT / module.replace(".", "/") / f"{alias.name}.py").exists())
    return names


def charlm_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def app_modules() -> list[Path]:
    return sorted([ROOT / "streamlit_app.py", *(p for p in APP.rglob("*.py") if "__pycache__" not in p.parts)])


def test_every_package_says_in_one_line_what_it_may_import():
    packages = sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert {p.name for p in packages} == set(MAY_IMPORT) - {BASE}
    for package in packages:
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "\n" not in doc.strip() and "import" in doc, package.name


def test_the_parser_sees_every_form_of_import():
    # The rules below rely on it: a nested import, a `from package import module` and a plain import.
    imports = imported_modules(PACKAGE / "train" / "jobs.py")
    assert {"charlm.train.trainer", "charlm.text.corpus", "threading"} <= imports
    assert "charlm.modelfile.checkpoint" in imported_modules(PACKAGE / "train" / "trainer.py")


@pytest.mark.parametrize("path", charlm_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_folder_may(path):
    part = part_of(path)
    imports = imported_modules(path)
    used = {part_named(name) for name in imports} - {None}
    assert used <= MAY_IMPORT[part], f"{part} may not import {sorted(used - MAY_IMPORT[part])}"
    assert not any(name.split(".")[0] == "streamlit" for name in imports)
    if part in WITHOUT_TORCH:
        assert not any(name.split(".")[0] == "torch" for name in imports)


@pytest.mark.parametrize("path", app_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_app_never_imports_the_cli_and_a_page_never_imports_a_page(path):
    imports = imported_modules(path)
    assert not any(part_named(name) == "cli" for name in imports)
    if APP / "pages" in path.parents:
        assert not any(name.startswith("app.pages") for name in imports)


REFUSE_TORCH = NO_TORCH_HOOK + """
import importlib, pkgutil
import charlm
names = [f"charlm.{m.name}" for m in pkgutil.iter_modules(charlm.__path__) if not m.ispkg and m.name != "__main__"]
for package in sys.argv[1:]:
    module = importlib.import_module(f"charlm.{package}")
    names += [f"charlm.{package}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
for name in names:
    importlib.import_module(name)
print(len(names), sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "streamlit")))
"""


def test_the_reading_half_imports_in_a_fresh_process_where_torch_is_refused():
    packages = [part for part in WITHOUT_TORCH if part != BASE]
    run = subprocess.run([sys.executable, "-c", REFUSE_TORCH, *packages], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    count, loaded = run.stdout.split(" ", 1)
    expected = sum(1 for p in charlm_modules() if part_of(p) in WITHOUT_TORCH and p.name != "__init__.py"
                   and p.name != "__main__.py")
    assert int(count) == expected and loaded.strip() == "[]"


def test_a_page_that_only_shows_runs_imports_jobs_without_torch():
    # The train package's promise (its first line): jobs, its events and the run's state load torch only when a
    # run starts, so app/state and the sidebar badge work on a server without torch.
    code = REFUSE_TORCH.replace("for name in names:", "names = ['charlm.train.jobs', 'charlm.train.events']\nfor name in names:")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split(" ", 1) == ["2", "[]\n"]


def test_the_refusing_hook_does_refuse_torch():
    # The check above means something only if a torch import fails under it.
    run = subprocess.run([sys.executable, "-c", REFUSE_TORCH, "nn"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "no torch here" in run.stderr


READ_WITHOUT_TORCH = NO_TORCH_HOOK + """
from charlm.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [
    ["info", "checkpoints/demo.safetensors"],
    ["generate", "checkpoints/demo.safetensors", "--prime", "The ", "--length", "40", "--seed", "1"],
    ["score", "checkpoints/demo.safetensors", "TEXT"],
    ["explain", "checkpoints/demo.safetensors", "TEXT", "--at", "9", "--back", "4"],
], ids=lambda command: command[0])
def test_the_reading_commands_run_where_torch_is_refused(command, tmp_path):
    text = tmp_path / "words.txt"
    text.write_text("The will to power", encoding="utf-8")
    command = [str(text) if part == "TEXT" else part for part in command]
    run = subprocess.run([sys.executable, "-c", READ_WITHOUT_TORCH, *command], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    if command[0] == "info":
        assert lines[0] == "preset: cpu-fast"
    elif command[0] == "generate":
        assert len(run.stdout) == 40 + 1        # the 40 characters written, and a newline
    elif command[0] == "score":                 # the mean, then each character after the first with its surprise
        assert float(lines[0]) > 0 and len(lines) == 1 + len("The will to power") - 1
    else:                                       # ln p of the 't' of "to", then the 4 characters before it
        assert float(lines[0]) < 0 and [line.split("\t")[:2] for line in lines[1:]] == [
            ["1", " "], ["2", "l"], ["3", "l"], ["4", "i"]]


def lengths(path: Path) -> list[tuple[str, int]]:
    """(name, lines) of every function and method in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("path", [*charlm_modules(), *app_modules()], ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_read_in_one_sitting(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES
    assert [(name, n) for name, n in lengths(path) if n > MAX_FUNCTION_LINES] == []


def test_the_size_checks_see_a_long_function(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    assert lengths(long) == [("f", MAX_FUNCTION_LINES + 1)]


def test_one_place_says_each_figure_for_people():
    # LN2, the duration format and the core count each live in one module; a second copy drifts from the first.
    sources = {path: path.read_text(encoding="utf-8") for path in [*charlm_modules(), *app_modules()]}
    assert [p.name for p, text in sources.items() if "\nLN2 =" in text or text.startswith("LN2 =")] == ["units.py"]
    assert [p.name for p, text in sources.items() if "def format_duration" in text] == ["units.py"]
    assert [p.name for p, text in sources.items() if "sched_getaffinity" in text] == ["device.py"]


def test_the_trainer_takes_configs_and_only_the_cli_turns_a_preset_name_into_them():
    users = sorted(str(p.relative_to(PACKAGE)) for p in charlm_modules() if "charlm.presets" in imported_modules(p))
    assert all(user.startswith("cli/") for user in users) and users
