"""Run-directory I/O (zoo/runs.py): the one atomic writer, and who may import what for files."""

import ast
import os
from pathlib import Path

import pytest

from zoo.runs import atomic_write, write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
# What zoo/runs.py provides; importing any of these from the trainer is what issue 12 removed.
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
            if isinstance(node, ast.ImportFrom) and node.module == "zoo.train":
                offenders += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names
                              if a.name in FILE_HELPERS]
    assert not offenders, f"import these from zoo.runs instead: {offenders}"


def test_runs_module_does_not_import_the_trainer():
    tree = ast.parse((ROOT / "zoo" / "runs.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "zoo.train" not in imported


def test_os_replace_is_called_only_by_the_one_atomic_writer():
    # Files go through zoo.runs; the data-set cache swaps whole folders (its own concern).
    callers = []
    for path in _project_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr == "replace"
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                callers.append(str(path.relative_to(ROOT)))
    assert set(callers) == {"zoo/runs.py", "zoo/datasets/cache.py"}


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "metrics.json"
    out.write_text("old")
    write_json_atomic(out, {"a": 1})
    assert out.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    out = tmp_path / "report.md"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_the_temporary_keeps_the_suffix_that_picks_the_format(tmp_path):
    with atomic_write(tmp_path / "curves.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"png")


def test_a_symlinked_output_is_followed_not_replaced(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_text_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_path_that_is_not_a_regular_file_is_refused_untouched(tmp_path, kind):
    out = tmp_path / "out"
    out.mkdir() if kind == "folder" else os.mkfifo(out)
    with pytest.raises(FileExistsError, match="not a regular file"):
        write_text_atomic(out, "text")
    assert (out.is_dir() if kind == "folder" else not out.is_file())
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
