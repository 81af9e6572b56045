"""The code's layout: which module owns what, checked on the source (cheap, no imports run)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What zoo/core/runs.py provides; importing any of these from the trainer is what issue 12 removed.
FILE_HELPERS = {"SAVED_MODELS", "RUNS_DIR", "MODEL_FILE", "CONFIG_FILE", "HISTORY_FILE",
                "METRICS_FILE", "CURVES_FILE", "PREPROCESSING", "jsonable", "write_text_atomic",
                "write_json_atomic", "atomic_write", "publish_file", "new_run_dir",
                "read_history"}


def _project_modules():
    for folder in ("zoo", "recipes", "tuning", "benchmarks", "tests"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_file_helpers_are_not_imported_from_the_trainer():
    offenders = []
    for path in _project_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
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
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr == "replace"
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                callers.append(str(path.relative_to(ROOT)))
    assert set(callers) == {"zoo/core/runs.py", "zoo/data/cache.py"}


def _importers_of(module: str) -> list[str]:
    found = set()
    for path in _project_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
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
            tree = ast.parse(path.read_text(), str(path))
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
