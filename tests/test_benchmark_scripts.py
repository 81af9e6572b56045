"""Benchmark scripts that package or feed data: they use the library's scaling and file
digests (``zoo.data.batches.to_float``, ``zoo.weights.store.digests``), with the same results as the
arithmetic they used to write out themselves."""

from __future__ import annotations

import hashlib
import importlib
import json

import numpy as np


def load_script(name: str):
    """A module of the benchmarks package (the checkout's root is on pytest's pythonpath)."""
    return importlib.import_module(f"benchmarks.{name}")


def spy(monkeypatch, module, name: str) -> list:
    """Record the calls of ``module.name`` (which still does its work)."""
    calls: list = []
    real = getattr(module, name)

    def recorded(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return calls


def test_package_weights_reports_the_library_digest_and_scaled_accuracy(
        tmp_path, monkeypatch, capsys):
    import keras

    import zoo
    import zoo.core.runs
    import zoo.data.batches
    import zoo.weights.store
    from zoo.data.dataset import fit_images
    from zoo.data.load import load_dataset

    script = load_script("package_weights")
    monkeypatch.setattr(script, "PACKAGED", tmp_path)
    keras.utils.set_random_seed(0)
    trained = zoo.build("lenet5", num_classes=10)
    monkeypatch.setattr(zoo.core.runs, "load_run_config", lambda run: {
        "model": "lenet5", "hparams": {"num_classes": 10}, "dataset": "digits"})
    monkeypatch.setattr(zoo.core.runs, "load_run_metrics", lambda run: {"test_accuracy": 0.1})
    monkeypatch.setattr(zoo.core.runs, "load_run_model", lambda run: trained)
    digested, scaled = spy(monkeypatch, zoo.weights.store, "digests"), spy(
        monkeypatch, zoo.data.batches, "to_float")

    script.main([str(tmp_path / "run"), "lenet5", "test"])
    report = json.loads(capsys.readouterr().out.split("\n\nfor the entry")[0])

    packaged = tmp_path / "lenet5-test.weights.h5"
    assert digested == [(packaged,)] and len(scaled) == 1
    # What the script computed by hand before: the file's bytes and hashlib's SHA-256 ...
    content = packaged.read_bytes()
    assert report["size"] == len(content)
    assert report["sha256"] == hashlib.sha256(content).hexdigest()
    # ... and the test images divided by 255 as float32.
    data = load_dataset("digits")
    x = fit_images(data.x_test, tuple(trained.input_shape[1:])).astype("float32") / 255.0
    predicted = np.asarray(trained.predict(x, batch_size=256, verbose=0)).argmax(axis=1)
    assert report["test_correct"] == int((predicted == data.y_test).sum())
    keras.backend.clear_session()


def test_transfer_fashion_feeds_the_frozen_bottom_images_scaled_by_the_library(monkeypatch):
    import zoo.data.batches

    script = load_script("transfer_fashion")
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    fed: list[np.ndarray] = []

    class Bottom:
        def predict(self, x, **kwargs):
            fed.append(x)
            return x.reshape(len(x), -1)

    features = object.__new__(script.FrozenFeatures)  # no backbone: only the feeding
    features.bottom, features.input_shape, features.cache = Bottom(), (8, 8, 1), None
    scaled = spy(monkeypatch, zoo.data.batches, "to_float")
    maps = features.maps(images)
    assert len(scaled) == 1
    # What the script computed by hand before, to the bit.
    expected = images.astype(np.float32) / 255.0
    assert fed[0].dtype == np.float32 and np.array_equal(fed[0], expected)
    assert maps.shape == (4, 1, 1, 64)
