"""The real `zoo` CLI against bad input and faults: one line, non-zero exit, nothing lost.

Every case asserts the same contract (see ``assert_one_line_error``): a non-zero exit status,
exactly one ``Error:`` line that is not the funnel's "unexpected" (bug) message, no Python
traceback, and, where files are involved, that nothing finished was lost, replaced or left
half-written. Cases that fail before any work run in-process through click's CliRunner; disk
faults and kills run ``python -m zoo.cli`` in a subprocess, on a tiny tmpfs where the test can
mount one (we run as root in CI) and on a simulated full disk otherwise.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from image_modes import IMAGE_MODES, mode_copies
from official_files import make_idx_set, write_files

from zoo.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "filters=4,8", "--set", "dense_units=32,16"]
QUICK_TRAIN = ["--train-fraction", "0.1", "--batch-size", "64", *TINY]


# -- the contract ---------------------------------------------------------------------------

def assert_one_line_error(exit_code: int, output: str, *fragments: str) -> str:
    """Non-zero exit, one `Error:` line naming ``fragments``, no traceback; the line."""
    assert exit_code not in (0, None), output
    assert "Traceback" not in output, output
    # (An interrupted Keras progress bar may leave the line before it open.)
    errors = [line[line.index("Error:"):] for line in output.splitlines() if "Error:" in line]
    assert len(errors) == 1, output
    assert "unexpected" not in errors[0], errors[0]  # the funnel's marker for a zoo bug
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), errors[0]
    return errors[0]


def cli(*args: str) -> tuple[int, str]:
    """Run the CLI in-process (for failures that happen before any real work)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                      SystemExit), result.output
    return result.exit_code, result.output


def zoo_env() -> dict[str, str]:
    """A user's environment: TensorFlow's log level left unset, as a practitioner leaves it."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}


# TensorFlow's start-up lines (absl's pre-init warning, oneDNN, cudart_stub): a practitioner's
# terminal shows the zoo's output only (zoo.cli.quiet_tensorflow), in every subprocess case.
TENSORFLOW_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub")


def zoo_process(*args: str, cwd: Path, timeout: float = 900) -> tuple[int, str]:
    """Run ``python -m zoo.cli ARGS`` to the end: (exit status, stdout + stderr)."""
    done = subprocess.run([sys.executable, "-m", "zoo.cli", *map(str, args)], cwd=cwd,
                          env=zoo_env(), capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert not [noise for noise in TENSORFLOW_NOISE if noise in output], output
    return done.returncode, output


def kill_when(args: list[str], cwd: Path, ready, timeout: float = 900) -> None:
    """Start ``zoo ARGS``, SIGKILL its process group as soon as ``ready()`` holds."""
    args = [str(a) for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", *args], cwd=cwd,
                            env=zoo_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"zoo {' '.join(args)} ended before the kill point"
            assert time.monotonic() < deadline, "the kill point never came"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and its verification children
        proc.wait()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: hash} of every file under ``folder``."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file()}


# -- fixtures: bad files and folders ----------------------------------------------------------

def write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_bomb_png(path: Path, side: int = 20_000) -> None:
    """A small PNG whose header claims side x side pixels: over Pillow's bomb limit."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def image_folder(root: Path, per_class: int, classes=("cat", "dog")) -> Path:
    rng = np.random.default_rng(0)
    for cls in classes:
        for i in range(per_class):
            write_png(root / cls / f"{i}.png", rng.integers(0, 256, (12, 12), dtype=np.uint8))
    return root


@pytest.fixture
def mounted(tmp_path):
    """mounted(size, read_only) -> a fresh tmpfs folder; skips where mounting is not allowed."""
    points = []

    def mount(size: str, read_only: bool = False) -> Path:
        point = tmp_path / f"mnt{len(points)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root); the simulated variant runs")
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def unfinished_run(tiny_run, tmp_path):
    """A copy of the shared tiny lenet5 run, as if it had been killed before its test scores."""
    import shutil

    copy = tmp_path / "unfinished"
    shutil.copytree(tiny_run, copy)
    (copy / "metrics.json").unlink()
    return copy


# -- 1. bad numbers and values: refused before any work ------------------------------------

BAD_OPTIONS = [
    (["train", "lenet5", "--lr", "-1"], "--lr"),
    (["train", "lenet5", "--lr", "0"], "--lr"),
    (["train", "lenet5", "--lr", "nan"], "finite"),
    (["train", "lenet5", "--lr", "inf"], "finite"),
    (["train", "lenet5", "--lr", "fast"], "--lr"),
    (["train", "lenet5", "--epochs", "0"], "--epochs"),
    (["train", "lenet5", "--batch-size", "0"], "--batch-size"),
    (["train", "lenet5", "--batch-size", "many"], "--batch-size"),
    (["train", "lenet5", "--train-fraction", "0"], "--train-fraction"),
    (["train", "lenet5", "--train-fraction", "1.5"], "--train-fraction"),
    (["train", "lenet5", "--seed", "x"], "--seed"),
    (["train", "lenet5", "--input-shape", "28,28"], "--input-shape"),
    (["train", "lenet5", "--input-shape", "0,28,1"], "--input-shape"),
    (["train", "lenet5", "--set", "filters"], "key=value"),
    (["train", "lenet5", "--set", "filters=abc"], "'filters'", "integer"),
    (["train", "lenet5", "--set", "dropout=high"], "'dropout'", "number"),
    (["train", "lenet5", "--set", "padding=3"], "'padding'", "word"),
    (["train", "lenet5", "--set", "nosuch=1"], "nosuch"),
    (["train", "lenet6"], "unknown model", "lenet5"),
    (["train", "lenet5", "--recipe", "nosuch"], "nosuch"),
    (["show", "lenet5", "--set", "filters=abc"], "'filters'", "integer"),
    (["show", "lenet5", "--set", "kernel_sizes=a,b"], "'kernel_sizes'"),
    (["show", "lenet5", "--input-shape", "8,8,1"], "conv2"),
    (["tune", "lenet5", "--epochs", "0"], "--epochs"),
    (["tune", "lenet5", "--max-trials", "0"], "--max-trials"),
    (["tune", "lenet5", "--max-params", "-5"], "--max-params"),
    (["tune", "lenet5", "--batch-size", "0"], "--batch-size"),
    (["tune", "lenet5", "--space", "kernel_sizes"], "NAME=CHOICES"),
    (["transfer", "run", "--lr", "-1"], "--lr"),
    (["transfer", "run", "--head-dropout", "1.5"], "--head-dropout"),
    (["transfer", "run", "--fine-tune-lr", "0"], "--fine-tune-lr"),
    (["compare", "lenet5", "--recipes", "none", "--lr", "-1"], "--lr"),
    (["compare", "lenet5", "--recipes", "none", "--target", "2"], "--target"),
    (["export", "lenet5", "--tolerance", "0"], "--tolerance"),
    (["export", "lenet5", "--tolerance", "nan"], "finite"),
    (["export", "lenet5", "--version", "0"], "--version"),
    (["export", "lenet5", "--format", "pdf"], "unknown export format"),
    (["export", "lenet5", "--name", "tuning"], "reserved"),
    (["export", "lenet5", "--name", "runs"], "reserved"),
    (["export", "lenet5", "--name", "../outside"], "invalid export name"),
    (["export", "no/such/run"], "neither a run directory"),
    (["show", "saved_models/runs/missing"], "no such run directory"),
    (["predict", "saved_models/nothing", "a.png"], "not an export"),
]


@pytest.mark.parametrize("args", [case[0] for case in BAD_OPTIONS],
                         ids=[" ".join(case[0]) for case in BAD_OPTIONS])
def test_bad_values_are_refused_in_one_line_before_any_work(args, tmp_path):
    fragments = next(case[1:] for case in BAD_OPTIONS if case[0] == args)
    assert_one_line_error(*cli(*args), *fragments)
    assert not (tmp_path / "saved_models").exists() or not any(
        (tmp_path / "saved_models").rglob("*.keras"))


def test_debug_shows_the_traceback_that_the_one_line_replaces():
    runner = CliRunner()
    result = runner.invoke(main, ["--debug", "show", "lenet5", "--set", "filters=abc"])
    assert isinstance(result.exception, ValueError)
    result = runner.invoke(main, ["show", "lenet5", "--set", "filters=abc"],
                           env={"ZOO_DEBUG": "1"})
    assert isinstance(result.exception, ValueError)


# -- 2. bad files and folders -----------------------------------------------------------------

def test_a_truncated_keras_file_is_called_invalid_not_missing(tiny_run, tmp_path):
    cut = tmp_path / "cut.keras"
    cut.write_bytes((tiny_run / "model.keras").read_bytes()[:4000])
    for command in (["show", cut], ["export", cut, "--out", tmp_path / "exports"]):
        line = assert_one_line_error(*cli(*command), "not a valid .keras file")
        assert "not found" not in line.lower()
    assert not (tmp_path / "exports").exists()


@pytest.mark.parametrize("per_class", [1, 2])
def test_classes_too_small_for_three_splits_are_refused_with_counts(per_class, tmp_path):
    folder = image_folder(tmp_path / f"small{per_class}", per_class)
    line = assert_one_line_error(*cli("train", "lenet5", "--dataset", folder, "--epochs", "1"),
                                 "every class", "'cat'", "0 train")
    assert "shuffle" not in line
    assert not (tmp_path / "saved_models").exists()


def test_every_class_is_in_every_split_from_three_images_on(tmp_path):
    from zoo.data.load import load_dataset

    data = load_dataset(str(image_folder(tmp_path / "three", 3)))
    for labels in (data.y_train, data.y_val, data.y_test):
        assert sorted(set(labels.tolist())) == [0, 1]


@pytest.mark.parametrize("content", ["bomb", "corrupt"])
def test_unreadable_images_in_a_folder_are_named(content, tmp_path):
    folder = image_folder(tmp_path / "images", 3)
    bad = folder / "dog" / "bad.png"
    if content == "bomb":
        write_bomb_png(bad)
    else:
        bad.write_bytes(b"not a png at all")
    assert_one_line_error(*cli("train", "lenet5", "--dataset", folder, "--epochs", "1"),
                          str(bad))


def test_folder_problems_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    single = image_folder(tmp_path / "single", 3, classes=("cat",))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_one_line_error(*cli("train", "lenet5", "--dataset", empty), "no class sub-folders")
    assert_one_line_error(*cli("train", "lenet5", "--dataset", single), "single class")
    assert_one_line_error(*cli("train", "lenet5", "--dataset", a_file), "not a folder")
    assert_one_line_error(*cli("train", "lenet5", "--dataset", tmp_path / "nowhere"),
                          "unknown data set")


def _fake_export(folder: Path) -> Path:
    """A version folder with just enough manifest for predict to read images."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({
        "class_names": ["0", "1"], "input": {"shape": [None, 28, 28, 1]},
        "formats": {"savedmodel": {"path": "."}}}))
    return folder


@pytest.mark.parametrize("content", ["bomb", "corrupt", "missing"])
def test_predict_names_the_image_it_cannot_read(content, tmp_path):
    export = _fake_export(tmp_path / "exp" / "1")
    image = tmp_path / "in.png"
    if content == "bomb":
        write_bomb_png(image)
    elif content == "corrupt":
        image.write_bytes(b"\x89PNG broken")
    assert_one_line_error(*cli("predict", export, image), str(image))


def test_predict_with_a_format_the_newest_version_lacks_names_the_version_that_has_it(
        tmp_path):
    older = _fake_export(tmp_path / "exp" / "1")
    manifest = json.loads((older / "manifest.json").read_text())
    manifest["formats"]["tflite"] = {"path": "tflite/model.tflite"}
    (older / "manifest.json").write_text(json.dumps(manifest))
    _fake_export(tmp_path / "exp" / "2")
    write_png(tmp_path / "in.png", np.zeros((28, 28), np.uint8))
    assert_one_line_error(*cli("predict", tmp_path / "exp", tmp_path / "in.png", "--format",
                               "tflite"), "no 'tflite' format", str(older))


def test_resuming_a_run_with_another_model_is_refused_naming_both(unfinished_run):
    before = snapshot(unfinished_run)
    line = assert_one_line_error(*cli("train", "lenet5_modern", "--out", unfinished_run,
                                      "--epochs", "1"), "lenet5 run", "lenet5_modern")
    assert len(line) < 300  # no weight arrays dumped
    line = assert_one_line_error(*cli("train", "lenet5", "--out", unfinished_run,
                                      "--epochs", "1"), "other hyperparameters", "filters")
    assert snapshot(unfinished_run) == before


def test_exporting_an_unfinished_run_says_how_far_it_got_and_needs_allow_unfinished(
        unfinished_run, tmp_path):
    from zoo.deploy.export import build_manifest, load_export_source

    before = snapshot(unfinished_run)
    exports = tmp_path / "exports"
    assert_one_line_error(*cli("export", unfinished_run, "--format", "keras", "--out", exports),
                          f"run {unfinished_run} is unfinished", "3 of 3 epochs",
                          "best val_loss", "--allow-unfinished")
    assert_one_line_error(*cli("export", unfinished_run / "model.keras", "--out", exports),
                          "is unfinished")
    assert not exports.exists() and snapshot(unfinished_run) == before
    source = load_export_source(unfinished_run, allow_unfinished=True)
    training = build_manifest(source, "lenet5", 1, {}, tmp_path)["training"]
    assert training["finished"] is False and training["epochs_done"] == 3
    assert training["test_metrics"] == {} and "--allow-unfinished" in training["note"]


def test_a_finished_run_is_never_overwritten(tiny_run):
    before = snapshot(tiny_run)
    assert_one_line_error(*cli("train", "lenet5", "--out", tiny_run, "--epochs", "1"),
                          "finished lenet5 run")
    assert snapshot(tiny_run) == before


def test_writes_replace_regular_files_only_and_follow_symlinks(tiny_run, tmp_path):
    assert_one_line_error(*cli("viz", "curves", tiny_run, "--out", "/dev/null"),
                          "not a regular file")
    assert Path("/dev/null").is_char_device()
    target = tmp_path / "real.png"
    link = tmp_path / "link.png"
    link.symlink_to(target)
    code, output = cli("viz", "curves", tiny_run, "--out", link)
    assert code == 0, output
    assert link.is_symlink() and target.stat().st_size > 1000


def test_a_diverging_run_keeps_no_nan_model(tmp_path):
    out = tmp_path / "nan"
    assert_one_line_error(*cli("train", "lenet5_modern", "--lr", "1e6", "--epochs", "2",
                               *QUICK_TRAIN, "--out", out), "NaN", "--lr")
    model = out / "model.keras"
    if model.exists():
        import keras

        weights = keras.saving.load_model(model).get_weights()
        assert all(np.isfinite(w).all() for w in weights)


# -- 3. read-only and full disks -------------------------------------------------------------

def test_read_only_out_is_one_line_for_train_export_and_tune(mounted, tiny_run, tmp_path):
    read_only = mounted("1m", read_only=True)
    for args in (["train", "lenet5", "--epochs", "1", "--out", read_only / "run"],
                 ["export", tiny_run, "--out", read_only],
                 ["tune", "lenet5", "--epochs", "1", "--out", read_only / "search"],
                 ["viz", "curves", tiny_run, "--out", read_only / "c.png"]):
        assert_one_line_error(*cli(*args), str(read_only), "read-only")


def _no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*")
                if p.name.startswith(".partial") or ".tmp" in p.name]


def test_full_disk_while_training_leaves_no_partial_model(mounted, tmp_path):
    full = mounted("48k")
    code, output = zoo_process("train", "lenet5", "--epochs", "1", *QUICK_TRAIN,
                               "--out", full / "run", cwd=tmp_path)
    assert_one_line_error(code, output, "no space left")
    assert _no_partial_files(full)


def test_full_disk_while_exporting_leaves_no_version(mounted, tiny_run, tmp_path):
    full = mounted("96k")
    code, output = zoo_process("export", tiny_run, "--out", full, cwd=tmp_path)
    assert_one_line_error(code, output, "no space left")
    model_dir = full / "lenet5"
    assert not model_dir.exists() or not any(model_dir.iterdir())


def test_simulated_full_disk_while_saving_the_checkpoint(tmp_path, monkeypatch):
    import keras

    def full_disk(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"half a model")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    monkeypatch.setattr(keras.Model, "save", full_disk)
    out = tmp_path / "run"
    assert_one_line_error(*cli("train", "lenet5", "--epochs", "1", *QUICK_TRAIN, "--out", out),
                          "no space left", "disk is full")
    assert not list(out.glob(".partial*")) and not (out / "model.keras").exists()


TINY_SEARCH = ["tune", "lenet5", "--space", "kernel_sizes=3,5", "--only", "--max-trials", "2",
               "--epochs", "1", "--train-fraction", "0.05", "--batch-size", "64", "--no-retrain"]


def test_full_disk_while_tuning_is_one_line_and_no_crash(mounted, tmp_path):
    full = mounted("256k")  # the issue's size: 8 tracebacks, then libhdf5's segfault (139)
    code, output = zoo_process(*TINY_SEARCH, "--out", full / "search", cwd=tmp_path)
    assert code == 1, output
    assert_one_line_error(code, output, "no space left", "disk is full", str(full))
    assert "Exception ignored" not in output and "FAILED" not in output


def test_simulated_full_disk_while_a_trial_saves_its_checkpoint(tmp_path, monkeypatch):
    """Where no tmpfs can be mounted (not root), the full disk is simulated at Keras' writer."""
    import keras

    point = tmp_path / "probe"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(point)],
                      capture_output=True).returncode == 0:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
        pytest.skip("a tmpfs can be mounted here: the real full disk variant runs")

    def full_disk(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"half the weights")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    code, output = cli(*TINY_SEARCH, "--out", tmp_path / "search")
    assert_one_line_error(code, output, "no space left", "checkpoint.weights.h5")
    assert "FAILED" not in output  # the search stops at the first trial, none is run after


# -- 4. races and kills, then the same command again ---------------------------------------

def test_two_exports_of_one_version_the_loser_gets_one_line(tiny_run, tmp_path, monkeypatch):
    import zoo.deploy.export as export

    real_verify = export.verify_formats

    def verify_while_another_export_publishes(version_dir, *args, **kwargs):
        checks = real_verify(version_dir, *args, **kwargs)
        winner = version_dir.parent / "5"
        winner.mkdir()
        (winner / "manifest.json").write_text("the other export's")
        return checks

    monkeypatch.setattr(export, "verify_formats", verify_while_another_export_publishes)
    assert_one_line_error(*cli("export", tiny_run, "--name", "x", "--version", "5",
                               "--format", "keras", "--out", tmp_path),
                          "another export", "--version")
    assert (tmp_path / "x" / "5" / "manifest.json").read_text() == "the other export's"
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["5"]


def _history_rows(run: Path) -> int:
    path = run / "history.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def test_train_killed_mid_run_with_a_damaged_backup_resumes_and_keeps_the_best(tmp_path):
    run = tmp_path / "run"
    args = ["train", "lenet5", "--epochs", "4", "--train-fraction", "0.2", "--batch-size", "32",
            *TINY, "--lr", "0.01", "--out", run]
    kill_when(args, tmp_path, lambda: _history_rows(run) >= 2
              and (run / "backup" / "latest.weights.h5.bkp").exists())
    best_before = min(r["val_loss"] for r in _rows(run))
    latest = run / "backup" / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[:200])  # as if killed while Keras wrote it
    code, output = zoo_process(*args, cwd=tmp_path)
    assert code == 0, output
    assert "damaged" in output and "Traceback" not in output
    history = _rows(run)
    assert sorted({r["epoch"] for r in history}) == [0, 1, 2, 3]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 4
    assert not (run / "backup").exists()
    # model.keras is the best epoch of the whole run, never a worse one after the resume.
    best = min(r["val_loss"] for r in history)
    assert best <= best_before
    assert abs(_val_loss_of(run) - best) < 1e-3


def _rows(run: Path) -> list[dict[str, float]]:
    from zoo.core.runs import history_rows

    return history_rows(run / "history.csv")


def _val_loss_of(run: Path) -> float:
    from zoo.core.runs import load_run_model
    from zoo.data.dataset import fit_dataset
    from zoo.training.train import TrainPlan, prepare_data, training_batches

    config = json.loads((run / "config.json").read_text())
    plan = TrainPlan(model="lenet5", train_fraction=config["train_fraction"],
                     batch_size=config["batch_size"])
    model = load_run_model(run)
    data = fit_dataset(prepare_data(plan), tuple(config["input_shape"]))
    _, val = training_batches(plan, data)
    return model.evaluate(val, verbose=0, return_dict=True)["loss"]


def test_train_killed_before_its_first_epoch_starts_over_cleanly(tmp_path):
    run = tmp_path / "run"
    args = ["train", "lenet5", "--epochs", "1", *QUICK_TRAIN, "--out", run]
    kill_when(args, tmp_path, lambda: (run / "config.json").exists())
    code, output = zoo_process(*args, cwd=tmp_path)
    assert code == 0, output
    assert (run / "metrics.json").exists() and (run / "model.keras").exists()


def test_export_killed_while_writing_publishes_nothing_and_reruns(tiny_run, tmp_path):
    out = tmp_path / "exports"
    args = ["export", tiny_run, "--format", "keras", "--out", out]
    kill_when(args, tmp_path, lambda: any((out / "lenet5").glob(".partial-*"))
              if (out / "lenet5").exists() else False)
    assert not (out / "lenet5" / "1").exists()
    code, output = zoo_process(*args, cwd=tmp_path)
    assert code == 0, output
    assert sorted(p.name for p in (out / "lenet5").iterdir()) == ["1"]  # the partial is gone


def test_tune_killed_after_a_trial_resumes_without_redoing_it(tmp_path):
    search = tmp_path / "search"
    args = ["tune", "lenet5", "--algorithm", "grid", "--space", "kernel_sizes=3,5", "--space",
            "filters=4", "--only", "--max-trials", "2", "--epochs", "1", "--train-fraction",
            "0.05", "--batch-size", "64", "--no-retrain", "--out", search]

    def first_trial_done() -> bool:
        return any('"COMPLETED"' in p.read_text()
                   for p in search.glob("tuner/trial_*/trial.json"))

    kill_when(args, tmp_path, first_trial_done)
    finished = sorted(p.parent.name for p in search.glob("tuner/trial_*/trial.json")
                      if '"COMPLETED"' in p.read_text())
    code, output = zoo_process(*args, cwd=tmp_path)
    assert code == 0, output
    redone = [line for line in output.splitlines() if line.startswith("trial ")]
    assert len(redone) == 2 - len(finished)
    if redone:  # kernels 3 then 5 floor pool2's output: one note, not a warning per build
        assert output.count("note: some configurations floor an output size") == 1, output
    assert (search / "trials.csv").exists()


def test_unsafe_works_end_to_end_for_a_lambda_model(tmp_path):
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 1.0)(inputs)
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(x))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Dense(8)(x))
    source = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(source)
    assert_one_line_error(*cli("export", source, "--out", tmp_path / "refused"), "--unsafe")
    code, output = cli("transfer", source, "--unsafe", "--per-class", "5", "--head-epochs", "1",
                       "--fine-tune-epochs", "1", "--out", tmp_path / "run")
    assert code == 0, output  # it reloads its own checkpoint without safe mode's refusal
    code, output = cli("export", source, "--unsafe", "--format", "keras",
                       "--out", tmp_path / "exports")
    assert code == 0, output
    manifest = json.loads((tmp_path / "exports" / "lambda" / "1" / "manifest.json").read_text())
    assert manifest["formats"]["keras"]["safe_mode"] is False


def test_tensorflow_start_up_lines_are_dropped_and_its_errors_kept():
    from zoo.cli.quiet_tensorflow import without_start_up_noise

    start_up = ("WARNING: All log messages before absl::InitializeLog() is called are written "
                "to STDERR\n"
                "I0000 00:00:1796574868.605114    5490 port.cc:153] oneDNN custom operations "
                "are on.\n"
                "W1206 16:24:42.123456  123 cudart_stub.cc:31] Could not find cuda drivers\n")
    kept = ("E0000 00:00:1796574868.605114    5490 cuda_executor.cc:1] out of memory\n"
            "UserWarning: a Python warning\n")
    assert without_start_up_noise(start_up + kept) == kept


# -- 5. image modes: every mode Pillow opens reaches the model scaled, or is refused --------

def test_every_image_mode_reaches_a_folder_data_set_scaled_like_its_8_bit_copy(tmp_path):
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (12, 12), dtype=np.uint8) for _ in range(6)]
    outputs = {}
    for mode in IMAGE_MODES:
        folder = tmp_path / mode.replace(";", "")
        for i, picture in enumerate(pictures):
            copy = mode_copies(picture, tmp_path / "copies" / str(i))[mode]
            target = folder / "data" / "ab"[i % 2] / f"{i}{copy.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            copy.rename(target)
        code, output = cli("data", "info", folder / "data")
        assert code == 0, output
        # "pixel mean/std per channel (...): 0.4919/0.2949" (colour: three, all the same)
        outputs[mode] = output.split("pixel mean/std")[1].split(":")[1].split()[0].rstrip(",")
    assert all(stats == outputs["L"] for stats in outputs.values()), outputs


def test_a_16_bit_image_shows_the_same_feature_maps_as_its_8_bit_copy(tiny_run, tmp_path):
    picture = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    drawn = []
    for mode in ("L", "I;16"):
        image = mode_copies(picture, tmp_path / mode.replace(";", ""))[mode]
        same_name = image.with_name(f"digit{image.suffix}")
        image.rename(same_name)
        out = tmp_path / f"maps-{mode.replace(';', '')}.png"
        code, output = cli("viz", "featuremaps", tiny_run, "--image", same_name, "--out", out)
        assert code == 0, output
        drawn.append(out.read_bytes())
    assert drawn[0] == drawn[1]


@pytest.mark.parametrize("mode, fragment", [("F", "floats from 0 to 3"),
                                            ("I", "negative pixels"),
                                            ("LAB", "cannot scale")])
def test_an_image_mode_without_a_grey_level_is_refused_naming_the_file(mode, fragment,
                                                                       tmp_path):
    from PIL import Image

    folder = image_folder(tmp_path / "images", 3)
    bad = folder / "dog" / "odd.tif"
    pixels = np.zeros((12, 12))
    pixels[0, 0] = {"F": 3.0, "I": -5, "LAB": 0}[mode]
    image = Image.new("LAB", (12, 12)) if mode == "LAB" else Image.fromarray(
        pixels.astype(np.float32 if mode == "F" else np.int32))
    image.save(bad)
    assert_one_line_error(*cli("data", "info", folder), str(bad), f"mode {mode!r}", fragment)


# -- 6. options that cannot apply are refused, never dropped ------------------------------

@pytest.mark.parametrize("options", [["--set", "filters=4,8"], ["--input-shape", "64,64,1"],
                                     ["--weights", "imagenet"]])
def test_show_of_a_saved_model_refuses_the_options_that_would_change_it(options, tiny_run):
    assert_one_line_error(*cli("show", tiny_run, *options), "cannot change saved model",
                          f"zoo show lenet5 {' '.join(options)}")
    assert_one_line_error(*cli("show", tiny_run / "model.keras", *options),
                          "cannot change saved model", f"zoo show MODEL {' '.join(options)}")


# -- 7. one writer per folder ----------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from zoo.core.locks import folder_lock
with folder_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process (no TensorFlow: it starts in a moment) holding ``folder``'s lock."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], env=zoo_env(),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def locked_commands(tiny_run: Path, folder: Path) -> dict[str, tuple[list, Path]]:
    """{command: (arguments writing ``folder``, the folder it locks)}."""
    return {
        "train": (["train", "lenet5", "--epochs", "1", "--out", folder], folder),
        "transfer": (["transfer", tiny_run, "--per-class", "5", "--out", folder], folder),
        "tune": (["tune", "lenet5", "--space", "kernel_sizes=3,5", "--only", "--epochs", "1",
                  "--out", folder], folder),
        "sweep": (["compare", "lenet5", "--sweep", "lr=1e-3,1e-2", "--out", folder], folder),
        "compare": (["compare", "lenet5", "--recipes", "none", "--out", folder], folder),
        "export": (["export", tiny_run, "--format", "keras", "--out", folder],
                   folder / "lenet5"),
    }


@pytest.mark.parametrize("command", ["train", "transfer", "tune", "sweep", "compare", "export"])
def test_a_second_command_on_a_folder_in_use_stops_at_once_naming_the_holder(
        command, tiny_run, tmp_path):
    args, locked = locked_commands(tiny_run, tmp_path / "busy")[command]
    locked.mkdir(parents=True)
    (locked / "kept.txt").write_text("the first command's")
    holder = hold_lock(locked)
    try:
        before = snapshot(locked)
        start = time.monotonic()
        assert_one_line_error(*cli(*args), str(locked), "in use",
                              f"process {holder.pid}")
        assert time.monotonic() - start < 15  # before any data is loaded or model built
        assert snapshot(locked) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_command_is_taken_over(tmp_path, caplog):
    run = tmp_path / "run"
    holder = hold_lock(run)
    holder.send_signal(signal.SIGKILL)  # the kernel drops its flock; its pid file stays
    holder.wait()
    assert (run / ".zoo-lock").read_text().strip() == str(holder.pid)
    code, output = cli("train", "lenet5", "--epochs", "1", *QUICK_TRAIN, "--out", run)
    assert code == 0, output
    assert (run / "metrics.json").exists() and not (run / ".zoo-lock").exists()
    notes = [r.getMessage() for r in caplog.records if "taking it over" in r.getMessage()]
    assert len(notes) == 1 and f"zoo command {holder.pid}" in notes[0], notes


# -- 8. advice that fits: the zoo's cache, --out a file ---------------------------------------

def test_a_read_only_zoo_home_is_named_and_folder_training_goes_on_without_it(
        mounted, tmp_path, monkeypatch, caplog):
    home = mounted("64k", read_only=True)
    monkeypatch.setenv("ZOO_HOME", str(home))
    contents, _ = make_idx_set("mnist", monkeypatch)
    line = assert_one_line_error(*cli("data", "import", "mnist",
                                      write_files(tmp_path / "raw", contents)),
                                 str(home), "set ZOO_HOME")
    assert "--out" not in line  # `zoo data import` has none
    folder = image_folder(tmp_path / "images", 3)
    code, output = cli("train", "lenet5", "--dataset", folder, "--epochs", "1", *TINY,
                       "--out", tmp_path / "run")
    assert code == 0, output
    assert (tmp_path / "run" / "metrics.json").exists()
    # (logged to the terminal's standard error; caplog holds it in-process)
    notes = [r.getMessage() for r in caplog.records if "not caching" in r.getMessage()]
    assert len(notes) == 1 and "set ZOO_HOME" in notes[0], notes


def test_out_naming_an_existing_file_says_so(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for command in (["train", "lenet5", "--epochs", "1"], TINY_SEARCH):
        line = assert_one_line_error(*cli(*command, "--out", a_file), str(a_file),
                                     "existing file, not a folder")
        assert "another zoo command" not in line
    assert a_file.read_text() == "mine"


def test_a_cut_short_cached_data_set_is_called_damaged_with_the_command_that_mends_it(
        tmp_path, monkeypatch):
    from zoo.data import cache

    contents, _ = make_idx_set("mnist", monkeypatch)
    code, output = cli("data", "import", "mnist", write_files(tmp_path / "raw", contents))
    assert code == 0, output
    x_train = cache.dataset_dir("mnist") / "x_train.npy"
    x_train.write_bytes(x_train.read_bytes()[:-5000])  # as a full disk or a cut copy leaves it
    code, output = cli("data", "list")
    assert code == 0, output
    row = next(line for line in output.splitlines() if line.startswith("mnist "))
    assert "damaged" in row and "ready" not in row
    assert f"{x_train} is cut short" in output and "zoo data import mnist" in output
    assert_one_line_error(*cli("train", "lenet5", "--dataset", "mnist", "--epochs", "1"),
                          str(x_train), "cut short", "zoo data import mnist")


def test_cached_data_sets_follow_the_umask(tmp_path, monkeypatch):
    from zoo.data import cache

    contents, _ = make_idx_set("mnist", monkeypatch)
    old = os.umask(0o022)
    try:
        code, output = cli("data", "import", "mnist", write_files(tmp_path / "raw", contents))
    finally:
        os.umask(old)
    assert code == 0, output
    assert (cache.dataset_dir("mnist").stat().st_mode & 0o777) == 0o755  # mkdtemp's 0700 before
