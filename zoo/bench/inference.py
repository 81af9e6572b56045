"""`zoo bench`'s inference measurement: ``predict_on_batch`` and the exported SavedModel's serving
function, at batch 1 (with p50/p99 latency) and at a large batch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoo.bench.timing import spread
from zoo.core.runs import PREPROCESSING
from zoo.data.batches import has_tensorflow, to_float
from zoo.data.dataset import Dataset, fit_images
from zoo.deploy.export import ExportSource, build_serving_model, write_savedmodel
from zoo.deploy.serving import INPUT_NAME, SIGNATURE

# Work per inference measurement, in FLOPs.
INFERENCE_FLOPS = 2e10


def latency(seconds: list[float]) -> dict[str, float]:
    """p50 and p99 of per-call seconds, in milliseconds."""
    p50, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99)}


def _to_host(value) -> Any:
    """Wait for an (asynchronous) result by copying it, or each of its outputs, to NumPy."""
    if isinstance(value, dict):
        return {key: np.asarray(v) for key, v in value.items()}
    return np.asarray(value)


def _time_calls(function: Callable[[Any], Any], batch, calls: int, warmup: int = 1
                ) -> list[float]:
    for _ in range(warmup):
        _to_host(function(batch))
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        _to_host(function(batch))
        seconds.append(time.perf_counter() - start)
    return seconds


def _inference(function: Callable[[Any], Any], images: np.ndarray, macs: int,
               large_batch: int) -> dict[str, Any]:
    """Images/s at batch 1 and at ``large_batch``, and batch-1 latency, of one function."""
    forward = max(2 * macs, 1)
    calls_1 = int(min(200, max(3, INFERENCE_FLOPS // forward)))
    calls_n = int(min(30, max(2, INFERENCE_FLOPS // (forward * large_batch))))
    single = _time_calls(function, images[:1], calls_1)
    batched = _time_calls(function, images[:large_batch], calls_n)
    return {"batch1_images_per_s": spread([1 / s for s in single]),
            "large_batch": large_batch,
            "large_batch_images_per_s": spread([large_batch / s for s in batched]),
            "batch1_latency": latency(single), "calls": [calls_1, calls_n]}


def saved_model_server(model, name: str, path: Path) -> Callable[[Any], Any] | None:
    """The serving function of ``model`` exported as `zoo export` does (uint8 images in), or
    None without TensorFlow."""

    if not has_tensorflow():
        return None
    import tensorflow as tf

    source = ExportSource(model=model, model_name=name, hyperparameters={},
                          class_names=[str(c) for c in range(model.output_shape[-1])],
                          preprocessing=PREPROCESSING, origin="zoo bench", trained=True)
    write_savedmodel(build_serving_model(source), path)
    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures[SIGNATURE]
    # The lambda keeps `loaded` alive: the signature only weakly references its variables.
    return lambda images: (loaded, serve(**{INPUT_NAME: tf.constant(images)}))[1]


def bench_inference(result, macs: int, large_batch: int, seed: int, work_dir: Path,
                    source: Dataset | None = None) -> dict[str, Any]:
    """Keras predict_on_batch and SavedModel serving speed of a finished training run, on
    random images or on ``source``'s test images (repeated if fewer than ``large_batch``)."""

    model = result.model
    shape = tuple(model.input_shape[1:])
    if source is None:
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(large_batch, *shape), dtype=np.uint8)
    else:
        picks = np.arange(large_batch) % len(source.x_test)
        images = fit_images(source.x_test[picks], shape)
    report = {"keras_predict": _inference(model.predict_on_batch, to_float(images), macs,
                                          large_batch)}
    server = saved_model_server(model, model.name, work_dir / f"export-{model.name}")
    if server is None:
        report["saved_model"] = None
        report["saved_model_note"] = "skipped: TensorFlow is not installed"
    else:
        report["saved_model"] = _inference(server, images, macs, large_batch)
    return report

