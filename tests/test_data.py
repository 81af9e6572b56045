"""Data sources: embedded digits, image folders, tensorflow-datasets (offline), fitting."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image

from zoo.data.batches import make_batches
from zoo.data.dataset import DataError, fit_images
from zoo.data.load import load_dataset


def test_digits_are_real_split_and_deterministic():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.image_shape == (28, 28, 1)
    assert a.num_classes == 10
    total = len(a.x_train) + len(a.x_val) + len(a.x_test)
    assert total == 1797  # scikit-learn's real scans, no more, no less
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert set(np.unique(a.y_test)) == set(range(10))
    assert a.x_train.dtype == np.uint8 and a.x_train.max() > 200


def test_subset_few_shot_and_class_filter():
    data = load_dataset("digits").subset(classes=[5, 6, 7], per_class=4)
    assert data.class_names == ["5", "6", "7"]
    assert len(data.x_train) == 12
    assert sorted(np.unique(data.y_test)) == [0, 1, 2]


def _write_folder(root, classes=("cat", "dog"), per_class=8, size=(12, 10), mode="RGB"):
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / cls / f"{i}.png")
    return root


def test_image_folder_loads_classes(tmp_path):
    data = load_dataset(str(_write_folder(tmp_path / "pets")))
    assert data.class_names == ["cat", "dog"]
    assert data.image_shape == (10, 12, 3)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 16


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="single class"):
        load_dataset(str(_write_folder(tmp_path / "one", classes=("cat",))))
    bad = _write_folder(tmp_path / "bad")
    (bad / "cat" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        load_dataset(str(bad))
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "b").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images"):
        load_dataset(str(tmp_path / "noimg"))
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("no/such/place")


def test_fit_images_pads_resizes_and_converts():
    grey = np.full((2, 28, 28, 1), 7, np.uint8)
    padded = fit_images(grey, (32, 32, 1))
    assert padded.shape == (2, 32, 32, 1) and padded[0, 0, 0, 0] == 0 and padded[0, 2, 2, 0] == 7
    assert fit_images(grey, (64, 64, 3)).shape == (2, 64, 64, 3)
    rgb = np.zeros((1, 8, 8, 3), np.uint8)
    assert fit_images(rgb, (8, 8, 1)).shape == (1, 8, 8, 1)
    with pytest.raises(DataError, match="4-channel"):
        fit_images(np.zeros((1, 8, 8, 4), np.uint8), (8, 8, 3))


def test_tfds_unprepared_fails_fast_with_instructions(tmp_path):
    import time

    start = time.monotonic()
    with pytest.raises(DataError, match="not prepared.*tfds build mnist"):
        load_dataset("tfds:mnist", data_dir=str(tmp_path))
    assert time.monotonic() - start < 60  # not the ~200 s offline hang of tfds.load


@functools.cache
def _tiny_shapes():
    """tfds registers a builder class by name, once a process."""
    import tensorflow_datasets as tfds

    class TinyShapes(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(names=["dark", "light"]),
                }),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(40), "test": self._generate_examples(10)}

        def _generate_examples(self, n):
            for i in range(n):  # a distinct grey level per image, darker for class 0
                value = 2 * i + (0 if i % 2 == 0 else 130)
                yield i, {"image": np.full((8, 8, 1), value, np.uint8), "label": i % 2}

    return TinyShapes


def tiny_tfds(data_dir, file_format: str | None = None) -> None:
    """Prepare 'tiny_shapes' (40 train and 10 test 8x8 grey images) in ``data_dir``, offline."""
    options = {"file_format": file_format} if file_format else {}
    _tiny_shapes()(data_dir=str(data_dir), **options).download_and_prepare()


def test_tfds_prepared_local_builder(tmp_path):
    """The real tfds path, on a data set prepared locally (no network)."""
    from zoo.data.inputs import open_source

    tiny_tfds(tmp_path)
    data = load_dataset("tfds:tiny_shapes", data_dir=str(tmp_path))
    assert data.class_names == ["dark", "light"]
    assert len(data.x_test) == 10 and len(data.x_train) + len(data.x_val) == 40
    assert data.x_train[data.y_train == 1].min() >= 130
    # TFRecord (tfds' default) has no random access: it loads as arrays, as before.
    assert isinstance(open_source("tfds:tiny_shapes", data_dir=str(tmp_path)), type(data))


def test_tfds_set_streams_the_same_images_per_split_as_in_memory(tmp_path):
    from zoo.data.inputs import fit_source, open_source
    from zoo.data.stream import ImageStream
    from zoo.data.tfds_listing import TfdsListing

    tiny_tfds(tmp_path / "tfrecord")
    tiny_tfds(tmp_path / "array_record", "array_record")
    # The arrays' path (tfds.as_dataset), on the same set prepared as TFRecord.
    before = load_dataset("tfds:tiny_shapes", data_dir=str(tmp_path / "tfrecord"))
    listing = open_source("tfds:tiny_shapes", data_dir=str(tmp_path / "array_record"))
    assert isinstance(listing, TfdsListing) and listing.image_shape == (8, 8, 1)
    stream, choice = fit_source(listing, (8, 8, 1), budget=100)  # 50 x 64 bytes: over it
    assert isinstance(stream, ImageStream) and choice.streamed
    in_memory, choice = fit_source(listing, (8, 8, 1), mode="in-memory")
    assert not choice.streamed
    for split in ("train", "val", "test"):
        expected = getattr(before, f"x_{split}")
        parts = [(np.asarray(x), np.asarray(y)) for x, y in stream.batches(split, batch_size=7)]
        np.testing.assert_allclose(np.concatenate([x for x, _ in parts]), expected / 255.0,
                                   atol=1e-6)
        np.testing.assert_array_equal(np.concatenate([y for _, y in parts]),
                                      getattr(before, f"y_{split}"))
        np.testing.assert_array_equal(getattr(in_memory, f"x_{split}"), expected)


def test_pipeline_batches_are_float_unit_range():
    data = load_dataset("digits")
    batches = make_batches(data.x_train[:10], data.y_train[:10], batch_size=4, shuffle=True,
                           seed=0)
    x, y = next(iter(batches))
    assert tuple(x.shape) == (4, 28, 28, 1)
    x = np.asarray(x)
    assert x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5


def test_pipeline_keeps_tf_data_autotuner_off():
    # With autotuning on, Keras' per-epoch iterator creation slept 0.3-2.4 s (zoo/data/).
    data = load_dataset("digits")
    batches = make_batches(data.x_train[:10], data.y_train[:10], batch_size=4, shuffle=True,
                           seed=0)
    assert batches.options().autotune.enabled is False
    epochs = [[int(v) for _, y in batches for v in np.asarray(y)] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(data.y_train[:10].tolist())
