"""Streaming input (zoo.data.stream): the same images per split as the in-memory path, bad
files named or skipped, changed folders reported, shards, balanced drawing, the input choice,
the decode cache's budget, and the grain path without TensorFlow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from zoo.data.dataset import DataError
from zoo.data.folders import dataset_from_listing
from zoo.data.input_choice import choose_input
from zoo.data.listing import list_image_folder
from zoo.data.load import load_dataset
from zoo.data.stream import ImageStream

RNG = np.random.default_rng(27)


def write_jpegs(root: Path, counts: dict[str, int], size=(40, 36)) -> Path:
    from PIL import Image

    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = RNG.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / cls / f"{i}.jpg", quality=90)
    return root


def streamed(stream: ImageStream, split: str, **options) -> tuple[np.ndarray, np.ndarray]:
    parts = [(np.asarray(x), np.asarray(y))
             for x, y in stream.batches(split, batch_size=5, **options)]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory) -> Path:
    return write_jpegs(tmp_path_factory.mktemp("stream") / "flat", {"a": 9, "b": 7, "c": 8})


@pytest.mark.parametrize("layout", ["flat", "train-test"])
def test_streamed_and_in_memory_splits_hold_the_same_images(tmp_path, flat_folder, layout):
    if layout == "flat":
        root = flat_folder
    else:  # train/ + test/, validation carved out of train/
        root = tmp_path / "pets"
        write_jpegs(root / "train", {"cat": 12, "dog": 9})
        write_jpegs(root / "test", {"cat": 3, "dog": 4})
    before = load_dataset(str(root))  # the in-memory path at the stored size, as before
    listing = list_image_folder(root)
    shape = (36, 40, 3)
    data = dataset_from_listing(listing, shape)
    stream = ImageStream(listing, shape)
    for split in ("train", "val", "test"):
        x, y = streamed(stream, split)
        np.testing.assert_array_equal(y, getattr(before, f"y_{split}"))
        np.testing.assert_array_equal(getattr(data, f"x_{split}"), getattr(before, f"x_{split}"))
        np.testing.assert_allclose(x, getattr(before, f"x_{split}") / 255.0, atol=1e-6)
    shuffled, labels = streamed(stream, "train", shuffle=True, seed=3)
    order = np.lexsort(shuffled.reshape(len(shuffled), -1).T)
    expect = np.lexsort((before.x_train / 255.0).reshape(len(shuffled), -1).T)
    np.testing.assert_allclose(shuffled[order], before.x_train[expect] / 255.0, atol=1e-6)


def test_in_memory_decodes_straight_to_the_model_size(flat_folder):
    listing = list_image_folder(flat_folder)
    small = dataset_from_listing(listing, (8, 8, 1))
    assert small.x_train.shape[1:] == (8, 8, 1) and small.x_train.dtype == np.uint8
    x, _ = streamed(ImageStream(listing, (8, 8, 1)), "test")
    np.testing.assert_allclose(x, small.x_test / 255.0, atol=1e-6)


@pytest.fixture(scope="module")
def numbered_folder(tmp_path_factory) -> Path:
    """23 PNGs, each one flat grey level (its number times 10), so a batch shows its files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("numbered") / "numbered"
    for number in range(23):
        folder = root / "ab"[number % 2]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), number * 10, np.uint8), "L").save(
            folder / f"{number}.png")
    return root


@pytest.mark.parametrize("tensorflow", [True, False], ids=["tf.data", "grain"])
def test_shards_are_equal_length_disjoint_and_cover_every_image(numbered_folder, monkeypatch,
                                                                 tensorflow):
    from zoo.data import batches
    from zoo.data.batches import Sharding

    monkeypatch.setattr(batches, "has_tensorflow", lambda: tensorflow)
    stream = ImageStream(list_image_folder(numbered_folder), (4, 4, 1))
    for split, shuffle in (("train", True), ("val", False), ("test", False)):
        shards = []
        for index in range(2):
            sharding = Sharding(devices=4, index=index, count=2)  # 2 processes, 2 devices each
            seen, weights = [], []
            for x, y, *w in stream.batches(split, batch_size=3, shuffle=shuffle, seed=5,
                                           sharding=sharding):
                numbers = [round(float(v) * 25.5) for v in np.asarray(x)[:, 0, 0, 0]]
                seen += numbers
                weights += list(np.asarray(w[0])) if w else [1.0] * len(numbers)
            shards.append((seen, weights))
        size = stream.size(split)
        padded = size + -size % 4
        assert [len(seen) for seen, _ in shards] == [padded // 2] * 2  # equal steps
        every = {number for seen, _ in shards for number in seen}
        assert every == {int(Path(p).stem) for p in (stream.listing.files[i] for i in
                                               stream.indices(split))}
        together = [n for seen, _ in shards for n in seen]
        assert len(together) - len(set(together)) == padded - size  # disjoint but the padding
        if not shuffle:  # evaluation: the padding weighs 0, every image 1 once
            kept = [n for seen, w in shards for n, weight in zip(seen, w) if weight > 0]
            assert sorted(kept) == sorted(every) and len(kept) == size
    with pytest.raises(DataError, match="--skip-bad-images"):
        ImageStream(stream.listing, (4, 4, 1), skip_bad=True).batches(
            "train", batch_size=4, sharding=Sharding(devices=2))


def test_balanced_drawing_evens_out_the_classes(tmp_path):
    root = write_jpegs(tmp_path / "skewed", {"many": 40, "few": 6}, size=(8, 8))
    stream = ImageStream(list_image_folder(root), (8, 8, 3))
    counts = np.zeros(2)
    for seed in range(3):
        _, y = streamed(stream, "train", shuffle=True, balanced=True, seed=seed)
        assert len(y) == stream.size("train")
        counts += np.bincount(y, minlength=2)
    assert abs(counts[0] - counts[1]) < 0.25 * counts.sum()  # unbalanced: 28 vs 4 a pass


def test_input_choice_streams_past_the_budget():
    small = choose_input(1000, (64, 64, 3), budget=2**30)
    assert not small.streamed and "within the budget" in small.reason
    big = choose_input(1000, (64, 64, 3), budget=2**20)
    assert big.streamed and "over the budget" in big.line()
    assert choose_input(10, (8, 8, 1), mode="stream").streamed
    with pytest.raises(DataError, match="only image folders and tfds sets"):
        choose_input(10, (8, 8, 1), mode="stream", streamable=False)


def tiny_plan(dataset: Path, out: Path | None, **changes):
    from zoo.training.train import TrainPlan

    return TrainPlan(model="lenet5", hparams={"filters": (2, 4), "dense_units": (8, 8)},
                     dataset=str(dataset), epochs=1, batch_size=8,
                     out=str(out) if out else None, **changes)


@pytest.fixture(scope="module")
def streamed_run(tmp_path_factory, flat_folder):
    """A tiny lenet5 run on the flat folder, streamed (its budget is 1,000 bytes)."""
    from zoo.training.train import train

    said = []
    out = tmp_path_factory.mktemp("streamed") / "run"
    train(tiny_plan(flat_folder, out, memory_budget=1000), verbose=0, announce=said.append)
    return out, said


def test_train_streams_a_folder_past_its_budget(streamed_run, flat_folder):
    from zoo.training.train import fit_source

    run, said = streamed_run
    config = json.loads((run / "config.json").read_text())
    assert config["input"]["path"] == "stream" and "over the budget" in config["input"]["reason"]
    assert said[0].startswith("input: stream (") and config["train_size"] == 18
    data, choice = fit_source(tiny_plan(flat_folder, None), list_image_folder(flat_folder),
                              (32, 32, 1))
    assert choice.line().startswith("input: in-memory (") and "within the budget" in choice.reason
    assert data.x_train.shape == (18, 32, 32, 1)


def test_confusion_and_neighbours_of_a_streamed_run(streamed_run, flat_folder, tmp_path):
    from recipes.embed import neighbor_grid
    from zoo.viz.evaluation import evaluate_classes
    from zoo.viz.inputs import load_run

    run = load_run(str(streamed_run[0]))
    report = evaluate_classes(run, "test")
    assert report.confusion.sum() == 3 and report.class_names == ["a", "b", "c"]
    grid = neighbor_grid(run.model, list_image_folder(flat_folder), queries=2, k=3,
                         out=tmp_path / "n.png")
    assert grid.neighbors.shape == (2, 3) and grid.path.stat().st_size > 1000


def test_transfer_onto_a_streamed_folder(streamed_run, tmp_path):
    from recipes.transfer import TransferSettings, load_source, transfer

    target = list_image_folder(write_jpegs(tmp_path / "target", {"x": 5, "y": 5}, size=(8, 8)))
    settings = TransferSettings(strategy="head", head_epochs=1, batch_size=4,
                                out=str(tmp_path / "t"), input_mode="stream")
    said = []
    result = transfer(load_source(str(streamed_run[0]), target=target), target, settings,
                      dataset=str(target.root), verbose=0, announce=said.append)
    assert said[0].startswith("input: stream (--stream asked")
    assert json.loads((result.run_dir / "config.json").read_text())["input"]["path"] == "stream"


def test_predict_streams_many_images_in_batches(monkeypatch, flat_folder):
    from zoo.deploy import predict

    files = [str(f) for f in sorted(flat_folder.rglob("*.jpg"))]
    at_once = list(predict.image_batches([flat_folder], (8, 8, 3)))
    monkeypatch.setattr(predict, "STREAM_FROM", 2)
    monkeypatch.setattr(predict, "PREDICT_BATCH", 5)
    streamed_batches = list(predict.image_batches([flat_folder], (8, 8, 3)))
    assert len(at_once) == 1 and len(streamed_batches) == 5
    assert [f for names, _ in streamed_batches for f in names] == at_once[0][0] == files
    np.testing.assert_array_equal(np.concatenate([x for _, x in streamed_batches]), at_once[0][1])


def test_unreadable_image_stops_the_stream_naming_it_or_is_skipped(tmp_path):
    from zoo.training.train import train

    root = write_jpegs(tmp_path / "broken", {"a": 6, "b": 6}, size=(8, 8))
    bad = sorted((root / "a").glob("*.jpg"))[2]
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    plan = tiny_plan(root, tmp_path / "run", input_mode="stream")
    with pytest.raises(DataError, match=f"cannot read image {bad}"):
        train(plan, verbose=0)
    said = []
    plan = tiny_plan(root, tmp_path / "skip", input_mode="stream", skip_bad_images=True)
    train(plan, verbose=0, announce=said.append)
    assert "skipped 1 unreadable image(s)" in said[-1] and str(bad) in said[-1]
    metrics = json.loads((tmp_path / "skip" / "metrics.json").read_text())
    assert metrics["skipped_images"] == 1


def test_a_folder_changed_after_listing_is_reported(tmp_path):
    root = write_jpegs(tmp_path / "moving", {"a": 4, "b": 4}, size=(8, 8))
    stream = ImageStream(list_image_folder(root), (8, 8, 3))
    victim = stream.listing.files[stream.indices("test")[0]]
    Path(victim).unlink()
    with pytest.raises(Exception):
        streamed(stream, "test")
    with pytest.raises(DataError, match=f"{victim} was removed after"):
        stream.check_read(None)


def test_decode_cache_keeps_to_its_budget_and_is_shown_and_cleared(tmp_path, monkeypatch,
                                                                   flat_folder):
    from click.testing import CliRunner

    from zoo.cli import main
    from zoo.data import folder_cache

    listing = list_image_folder(flat_folder)
    dataset_from_listing(listing, (8, 8, 3))
    dataset_from_listing(listing, (9, 9, 3))
    assert len(folder_cache.entries()) == 2
    monkeypatch.setenv("ZOO_FOLDER_CACHE_GB", str(24 * 10 * 10 * 3 / 2**30))
    dataset_from_listing(listing, (10, 10, 3))  # fits only alone: the older two go
    assert [e.shape for e in folder_cache.entries()] == [(10, 10, 3)]
    dataset_from_listing(listing, (11, 11, 3))  # over the budget: not cached
    assert [e.shape for e in folder_cache.entries()] == [(10, 10, 3)]
    shown = CliRunner().invoke(main, ["data", "cache"])
    assert shown.exit_code == 0 and "1 decoded folder(s)" in shown.output
    assert str(flat_folder.resolve()) in shown.output
    cleared = CliRunner().invoke(main, ["data", "cache", "--clear"])
    assert cleared.exit_code == 0 and folder_cache.entries() == []


GRAIN_SCRIPT = """
import json, sys
import numpy as np
from zoo.data.folders import dataset_from_listing
from zoo.data.listing import list_image_folder
from zoo.data.stream import ImageStream
from zoo.training.train import TrainPlan, train

listing = list_image_folder(sys.argv[1])
data = dataset_from_listing(listing, (36, 40, 3))
stream = ImageStream(listing, (36, 40, 3))
batches = stream.batches("val", batch_size=4)
x = np.concatenate([np.asarray(b[0]) for b in batches])
plan = TrainPlan(model="lenet5", hparams={"filters": (2, 4), "dense_units": (8, 8)},
                 dataset=sys.argv[1], epochs=2, batch_size=8, input_mode="stream")
said = []
result = train(plan, verbose=0, write_run=False, announce=said.append)
print(json.dumps({"tf": "tensorflow" in sys.modules, "kind": type(batches).__module__,
                  "same": bool(np.allclose(x, data.x_val / 255.0, atol=1e-6)),
                  "said": said, "epochs": len(result.history["loss"])}))
"""


def test_stream_reads_through_grain_without_tensorflow(python_without_tensorflow, flat_folder):
    from tests.conftest import with_quick_xla_compile

    python, env = python_without_tensorflow
    done = subprocess.run([*python, "-c", GRAIN_SCRIPT, str(flat_folder)], capture_output=True,
                          text=True, env=with_quick_xla_compile(env), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tf"] is False and report["kind"].startswith("zoo.data.stream")
    assert report["same"] and report["epochs"] == 2 and report["said"][0].startswith("input: str")
