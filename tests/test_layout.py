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
