"""Run-directory I/O (zoo/core/runs.py): the one atomic writer."""

import math
import os

import pytest

from zoo.core.runs import atomic_write, write_json_atomic, write_text_atomic


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


def test_text_is_written_beside_and_renamed_never_in_place(tmp_path):
    # A reader holding the old file keeps reading all of it; a write that fails half-way
    # (here: a character that cannot be encoded, after some text) leaves the old file whole.
    out = tmp_path / "summary.md"
    out.write_text("old contents")
    with out.open() as reader:
        write_text_atomic(out, "new")
        assert reader.read() == "old contents"
    assert out.read_text() == "new"
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(out, "half written \udcff")
    assert out.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]


def test_history_reading_keeps_complete_rows_and_the_last_of_a_redone_epoch(tmp_path):
    from zoo.core.runs import history_rows, read_history
    from zoo.training.resume import best_val_loss, repair_history

    path = tmp_path / "history.csv"
    assert history_rows(path) == [] and read_history(path) == {}
    assert best_val_loss(path) is None
    # Epoch 1 was interrupted, re-done after resuming, and a kill cut the last row short.
    path.write_text("epoch,loss,val_loss\n0,1.0,0.8\n1,0.9,0.5\n1,0.7,nan\n2,0.6,0.4\n3,0.5,0.")
    repair_history(path)
    assert path.read_text().endswith("2,0.6,0.4\n")
    assert [r["epoch"] for r in history_rows(path)] == [0, 1, 1, 2]
    history = read_history(path)
    assert history["epoch"] == [0, 1, 2] and history["loss"] == [1.0, 0.7, 0.6]
    assert history["val_loss"][::2] == [0.8, 0.4] and math.isnan(history["val_loss"][1])
    # The bar a resumed run's checkpoint must beat: the lowest finite val_loss ever logged.
    assert best_val_loss(path) == 0.4
    path.write_text("epoch,loss,val_loss\n0,1.0,0.8\n")  # one epoch so far
    assert read_history(path) == {"epoch": [0], "loss": [1.0], "val_loss": [0.8]}
    path.write_text("epoch,loss,val_loss\n0,1.0,0.8\n1,0.9,0.3\n2,0.7,nan\n3,0.6,0.5\n")
    repair_history(path)
    assert path.read_text().endswith("3,0.6,0.5\n") and best_val_loss(path) == 0.3
