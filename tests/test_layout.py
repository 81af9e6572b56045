"""The code's layout: which module owns what, checked on the source (cheap, no imports run)."""

import ast
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What zoo/core/runs.py provides; importing any of these from the trainer is what issue 12 removed.
FILE_HELPERS = {"SAVED_MODELS", "RUNS_DIR", "MODEL_FILE", "CONFIG_FILE", "HISTORY_FILE",
                "METRICS_FILE", "CURVES_FILE", "PREPROCESSING", "jsonable", "write_text_atomic",
                "write_json_atomic", "atomic_write", "publish_file", "new_run_dir",
                "read_history"}


@functools.lru_cache(maxsize=None)
def _parse(text: str, name: str) -> ast.Module:
    return ast.parse(text, name)


def _parsed(path: Path) -> ast.Module:
    """The file's syntax tree, parsed once per content for all the checks below (read-only)."""
    return _parse(path.read_text(), str(path))


def _project_modules():
    for folder in ("zoo", "recipes", "tuning", "benchmarks", "tests"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_file_helpers_are_not_imported_from_the_trainer():
    offenders = []
    for path in _project_modules():
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.ImportFrom) and node.module == "zoo.training.train":
                offenders += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names
                              if a.name in FILE_HELPERS]
    assert not offenders, f"import these from zoo.core.runs instead: {offenders}"


def test_runs_module_does_not_import_the_trainer():
    tree = ast.parse((ROOT / "zoo" / "core" / "runs.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "zoo.training.train" not in imported


def test_os_replace_is_called_only_by_the_one_atomic_writer():
    # Files go through zoo.core.runs; the data-set cache swaps whole folders (its own concern).
    callers = []
    for path in _project_modules():
        for node in ast.walk(_parsed(path)):
            if (isinstance(node, ast.Attribute) and node.attr == "replace"
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                callers.append(str(path.relative_to(ROOT)))
    assert set(callers) == {"zoo/core/runs.py", "zoo/data/cache.py"}


def _importers_of(module: str) -> list[str]:
    found = set()
    for path in _project_modules():
        for node in ast.walk(_parsed(path)):
            if (isinstance(node, ast.Import) and any(a.name == module for a in node.names)
                    or isinstance(node, ast.ImportFrom) and node.module == module):
                found.add(str(path.relative_to(ROOT)))
    return sorted(found)


def test_close_matches_for_mistyped_names_come_from_one_helper():
    assert _importers_of("difflib") == ["zoo/core/names.py"]


def _imported_names(tree) -> set[str]:
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module for n in ast.walk(tree)
                    if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module}


# Where Keras' own backend is PyTorch, tuning's GPU sharing asks it for the GPUs and caps its
# memory, as it asks JAX and TensorFlow under theirs: the backend's runtime, not a peer.
TORCH_BACKEND_RUNTIME = {"tuning/sharing.py", "tuning/workers.py"}


def test_installed_package_never_imports_torch_or_the_benchmarks():
    """zoo, recipes and tuning are what pip installs; the PyTorch and hand-written Keras peers
    live in benchmarks/, which imports the package, never the other way (nor as a module name
    handed to `python -m`)."""
    offenders = []
    for folder in ("zoo", "recipes", "tuning"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = _parsed(path)
            modules = _imported_names(tree) | {
                n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                and isinstance(n.value, str) and n.value.startswith("benchmarks.")}
            name = str(path.relative_to(ROOT))
            banned = ("benchmarks",) if name in TORCH_BACKEND_RUNTIME else ("torch", "benchmarks")
            offenders += [f"{name}: {m}" for m in sorted(modules) if m.split(".")[0] in banned]
    assert not offenders, offenders


def test_benchmark_code_in_the_package_stays_small():
    """What `zoo bench` ships (zoo/bench and its command) times the zoo's own models only."""
    files = [*(ROOT / "zoo" / "bench").glob("*.py"), ROOT / "zoo" / "cli" / "bench.py"]
    assert sum(len(path.read_text().splitlines()) for path in files) < 1000


# -- one direction: no import loops, no upward imports ------------------------------------------
PACKAGES = ("zoo", "recipes", "tuning")


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
        or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports when it runs, imports inside functions
    included (those under ``if TYPE_CHECKING:`` never run and are left out)."""
    files = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in files.items():
        tree = _parsed(path)
        skipped = {id(n) for block in ast.walk(tree) if _type_checking_block(block)
                   for statement in block.body for n in ast.walk(statement)}
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[:len(package) - node.level + 1] + [base] * bool(base))
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        graph[module] = {r for r in map(resolve, targets) if r and r != module}
    return graph


def import_loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops of ``graph``: its strongly connected components of two or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                loops.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return loops


def test_ci_runs_exactly_the_readme_lint_and_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"```bash\n{ci}\n```" in (ROOT / "README.md").read_text()
    assert "ruff check . && lint-imports && python -m pytest" in ci


def test_no_run_time_import_loops():
    loops = import_loops(import_graph(ROOT))
    assert not loops, "import loops (imports inside functions count): " + "; ".join(
        " <-> ".join(loop) for loop in loops)


def test_the_loop_check_sees_imports_inside_functions(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "zoo" / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from recipes import high\n")
    (tmp_path / "recipes" / "high.py").write_text("from zoo import low\n")
    assert import_loops(import_graph(tmp_path)) == []  # type-checking imports never run
    (tmp_path / "zoo" / "low.py").write_text("def f():\n    from ..recipes.high import g\n")
    assert import_loops(import_graph(tmp_path)) == [["recipes.high", "zoo.low"]]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the project's contracts, on the code under ``root``."""
    command = ("import sys; from importlinter.cli import lint_imports_command; "
               "sys.argv = ['lint-imports', '--no-cache', '--no-logo']; lint_imports_command()")
    return subprocess.run([sys.executable, "-c", command], cwd=root, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)


def test_an_upward_import_inside_a_function_breaks_the_layers_contract(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=lambda folder, names: [
            n for n in names if not n.endswith(".py") and not (Path(folder) / n).is_dir()
            or n == "__pycache__"])
    names = tmp_path / "zoo" / "core" / "names.py"
    names.write_text(names.read_text() + "\n\ndef upward():\n    from recipes import base\n")
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "zoo.core is not allowed to import recipes" in done.stdout, done.stdout
    assert "zoo.core.names -> recipes.base" in done.stdout, done.stdout


def test_every_model_build_goes_through_the_registrys_build():
    """zoo.core.registry.build (or zoo.build, the facade above it) checks the hyperparameters
    and turns 1/0 into booleans; a ModelInfo's builder called directly skips both."""
    offenders = []
    for folder in (*PACKAGES, "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name == "zoo/core/registry.py":
                continue
            for node in ast.walk(_parsed(path)):
                if (isinstance(node, ast.Attribute) and node.attr == "builder"
                        and not (isinstance(node.value, ast.Name) and node.value.id == "tfds")):
                    offenders.append(f"{name}:{node.lineno}")
    assert not offenders, f"build through zoo.core.registry.build instead: {offenders}"


# -- libraries' private names: one compatibility module per library -----------------------------
COMPAT_MODULES = {"tensorflow.python": "zoo/training/tensorflow_compat.py",
                  "keras_tuner.src": "tuning/keras_tuner_compat.py"}


def _package_files():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_private_library_modules_are_imported_only_by_their_compatibility_module():
    offenders = []
    for path in _package_files():
        name = str(path.relative_to(ROOT))
        for node in ast.walk(_parsed(path)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{name}: {m}" for m in modules for private, home in
                          COMPAT_MODULES.items()
                          if (m == private or m.startswith(private + ".")) and name != home]
    assert not offenders, f"reach these through {sorted(COMPAT_MODULES.values())}: {offenders}"


def _module_level(statements):
    """A module's statements that run when it is imported (functions and classes left out)."""
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _module_level(getattr(node, field, []))


def test_importing_a_module_patches_no_library():
    """keras-tuner's file writer is replaced by an explicit call (keras_tuner_compat.install,
    made by tuning.tuners.make_tuner), never as a side effect of an import."""
    offenders = []
    for path in _package_files():
        for node in _module_level(_parsed(path).body):
            targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
            if any(isinstance(t, ast.Attribute) for t in targets) or any(
                    getattr(c.func, "attr", getattr(c.func, "id", "")) == "install"
                    for c in calls):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
