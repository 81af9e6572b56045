"""One resume story for runs, sweeps and searches (zoo.training.job_folder): killed, the same
command resumes from the last finished epoch; run again once finished, it says so, shows the
finished result and exits 0; into a folder holding other work, it refuses in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from zoo.cli import main
from zoo.core.runs import HISTORY_FILE, read_history
from zoo.training import resume
from zoo.training.job_folder import JobFolderError, earlier_job

KILLED_AFTER = 1  # epochs
EPOCHS = 3
TINY = ["--set", "filters=4,8", "--set", "dense_units=16,16", "--batch-size", "64",
        "--train-fraction", "0.1"]
COMMANDS = {
    "train": ["train", "lenet5", *TINY, "--epochs", str(EPOCHS), "--out", "job"],
    "sweep": ["compare", "lenet5", "--sweep", "dropout:rate=0.2", "--seeds", "1", *TINY,
              "--epochs", str(EPOCHS), "--out", "job"],
    # The kill falls in the retraining of the best trial (the trials are keras-tuner's, which
    # resumes a search by not redoing its finished trials).
    "tune": ["tune", "lenet5", "--space", "kernel_sizes=3,5", "--space", "filters=4", "--only",
             "--max-trials", "1", "--epochs", "1", "--retrain-epochs", str(EPOCHS),
             "--batch-size", "64", "--train-fraction", "0.1", "--out", "job"],
}


class Killed(BaseException):
    """A kill: nothing after it runs (not an Exception, so no handler catches it)."""


def kill_after_epoch(monkeypatch, epochs: int) -> None:
    """Every run's backup callback kills the process once it has saved epoch ``epochs``."""
    make_backup = resume.finite_backup

    def killing_backup(backup_dir):
        backup = make_backup(backup_dir)
        save = backup.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            save(epoch, logs)
            if epoch + 1 == epochs:
                raise Killed

        backup.on_epoch_end = on_epoch_end
        return backup

    monkeypatch.setattr(resume, "finite_backup", killing_backup)


def history_of(kind, folder):
    """The epoch history of the run the command trains (its run directory, the sweep run's
    backup while unfinished, the retrained trial's run)."""
    if kind == "train":
        return folder / "job" / HISTORY_FILE
    if kind == "sweep":
        return next((folder / "job" / "unfinished").glob("*/" + HISTORY_FILE), None)
    return next((folder / "job" / "runs").glob("*/" + HISTORY_FILE), None)


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_killed_then_finished_work_resumes_then_is_reported(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = COMMANDS[kind]
    with monkeypatch.context() as patch:
        kill_after_epoch(patch, KILLED_AFTER)
        with pytest.raises(Killed):
            CliRunner().invoke(main, args, catch_exceptions=False)
    history = history_of(kind, tmp_path)
    assert read_history(history)["epoch"] == list(range(KILLED_AFTER))

    resumed = CliRunner().invoke(main, args)
    assert resumed.exit_code == 0, resumed.output
    assert f"after epoch {KILLED_AFTER} (its last finished epoch)" in resumed.output
    if kind == "sweep":  # the run's curve spans the epochs before and after the kill
        [row] = list(csv_rows(tmp_path / "job" / "sweep-dropout-rate-runs.csv"))
        assert len(row["val_curve"].split()) == EPOCHS
        assert not (tmp_path / "job" / "unfinished").exists()
    else:  # epoch 0 kept, 1-2 trained after resuming; none trained twice
        assert read_history(history_of(kind, tmp_path))["epoch"] == list(range(EPOCHS))

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert {"train": "had already finished with these settings; nothing trained",
            "sweep": "all 1 runs had already finished",
            "tune": "already held this search, finished"}[kind] in again.output
    assert "test_accuracy" in again.output or "val" in again.output  # the finished result


def csv_rows(path):
    import csv

    with path.open(newline="") as f:
        yield from csv.DictReader(f)


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_a_folder_holding_other_work_is_refused_in_one_line(kind, tmp_path, monkeypatch):
    """Checked before any data loads: the folder's config.json against the new settings."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "config.json").write_text(json.dumps(
        {"model": "lenet5", "epochs": 99, "sweeps": [], "hparams": {}}))
    if kind == "train":  # a run may resume with more epochs: only a finished one differs
        (tmp_path / "job" / "metrics.json").write_text("{}")
    done = CliRunner().invoke(main, COMMANDS[kind])
    assert done.exit_code != 0
    assert "job holds" in done.output and "epochs=99, not " in done.output, done.output
    assert len(done.output.strip().splitlines()) == 1  # refused before any data loads


def test_unrecorded_settings_take_their_defaults_or_are_not_compared(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "lenet5", "epochs": 3}))
    job = {"model": "lenet5", "epochs": 3, "seed": 1, "deterministic": False}
    assert earlier_job(tmp_path, job, list(job)).config["epochs"] == 3  # seed: not recorded
    with pytest.raises(JobFolderError, match="deterministic=true, not false"):
        earlier_job(tmp_path, job, list(job), defaults={"deterministic": True})
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(JobFolderError, match="cannot read"):
        earlier_job(tmp_path, job, list(job))
