"""The zoo's side of benchmarks/versus_torch.py, timed in a process of its own.

For each model and dtype policy the zoo is fed two ways:

- ``"host"``: the zoo's training path, ``zoo.training.train.train`` with the dtype policy in its
plan,
  on uint8 images in host memory, through the zoo's own input path (tf.data where TensorFlow
  is installed; on the JAX GPU machines without it, uint8 batches cast on the device);
- ``"device"``: the same compiled model (the zoo's optimizer, compile settings and steps per
  execution) fitted on the data set placed on the device once, as float32 [0, 1], each batch
  gathered there: no input cost at all, the upper bound. Keras' JAX trainer takes the
  ``jax.Array`` batches of a ``keras.utils.PyDataset`` as they are (its ``jax.device_put``
  leaves an array already on the device in place), whereas arrays passed to ``fit`` directly
  go through its array adapter, which copies JAX arrays back to NumPy (Keras 3.15).

Epochs are timed by ``zoo.bench.timing.epoch_timer``, which waits for the device before it
stops the clock. Result lines go to the file the parent names (``benchmarks.peer_jobs``).
"""

from __future__ import annotations

import gc
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.peer_jobs import (
    append_result,
    error_text,
    largest_batch_that_fits,
    peak_dtypes,
    peak_size,
    registry_macs,
    report_row,
)
from zoo.bench.machine import accelerated, machine_facts, measure_matmul_peak
from zoo.bench.run import default_steps, random_dataset, random_images
from zoo.bench.timing import epoch_timer
from zoo.core.layer_table import summarize
from zoo.core.registry import build, get_model_info
from zoo.data.batches import has_tensorflow
from zoo.training.dtype_policy import dtype_policy_scope
from zoo.training.train import TrainPlan, compile_model, train

# Training FLOPs per timed repeat on an accelerator: ~0.1-0.4 s of an H100's bf16 work, at
# least 8 steps (VGG-16 at 224x224: 2,048 images) and at most 64 (LeNet-5: ~0.1 s at 180k
# images/s).
ACCELERATOR_FLOPS_PER_REPEAT = 4e13
ACCELERATOR_STEPS = (8, 64)


def accelerator_steps(train_flops_per_image: float, batch_size: int) -> int:
    """Steps per timed repeat on an accelerator: about ACCELERATOR_FLOPS_PER_REPEAT of work,
    between 8 and 64."""
    steps = math.ceil(ACCELERATOR_FLOPS_PER_REPEAT / (train_flops_per_image * batch_size))
    return int(min(ACCELERATOR_STEPS[1], max(ACCELERATOR_STEPS[0], steps)))


def device_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
    """A ``keras.utils.PyDataset`` of shuffled float [0, 1] batches of ``images``, all on the
    device: uploaded once as uint8, converted there, each batch gathered there."""
    import keras

    class DeviceBatches(keras.utils.PyDataset):
        def __init__(self):
            # One worker: batches are gathered by device ops queued from the training thread.
            super().__init__(workers=1)
            self.x = keras.ops.cast(keras.ops.convert_to_tensor(images), "float32") / 255.0
            self.y = keras.ops.convert_to_tensor(labels)
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(images) / batch_size)

        def __getitem__(self, i):
            picks = self.order[i * batch_size:(i + 1) * batch_size]
            return keras.ops.take(self.x, picks, axis=0), keras.ops.take(self.y, picks, axis=0)

        def on_epoch_end(self):
            self.order = keras.ops.convert_to_tensor(
                self.rng.permutation(len(images)).astype(np.int32))

    return DeviceBatches()


def _release_memory() -> None:
    import keras

    keras.backend.clear_session()
    gc.collect()


class _ModelRuns:
    """One model under one dtype policy: the host run trains the model the device run reuses."""

    def __init__(self, job: dict[str, Any], spec: dict[str, Any], policy: str, macs: int,
                 accelerated: bool):
        self.job, self.spec, self.policy = job, spec, policy
        self.flops = 6 * macs
        self.accelerated = accelerated
        self.model = None  # compiled by the zoo's host run, reused by the device run
        self.hparams = {"input_shape": tuple(job["input_shape"]),
                        "num_classes": job["num_classes"]}

    def steps(self, batch: int) -> int:
        if self.job.get("steps"):
            return self.job["steps"]
        if self.accelerated:
            return accelerator_steps(self.flops, batch)
        return default_steps(self.flops, batch)

    def plan(self, batch: int, timer) -> TrainPlan:
        return TrainPlan(model=self.job["model"], hparams=self.hparams, dataset="random",
                         epochs=1 + self.spec["repeats"], batch_size=batch,
                         seed=self.spec["seed"], callbacks=[timer],
                         dtype_policy=self.policy)

    def host(self, batch: int) -> tuple[list[float], int]:
        """Epoch seconds of ``zoo.training.train.train`` from uint8 host arrays (warm-up first)."""
        self.model = None
        steps = self.steps(batch)
        data = random_dataset(self.hparams["input_shape"], self.hparams["num_classes"],
                              batch * steps, self.spec["seed"])
        timer = epoch_timer()
        # In memory: no run directory, checkpoint or logs (written between epochs anyway).
        result = train(self.plan(batch, timer), data=data, verbose=0, write_run=False)
        self.model = result.model
        return timer.wall, steps

    def device(self, batch: int) -> tuple[list[float], int]:
        """Epoch seconds of the zoo's compiled model fitted on device-resident batches."""
        import keras

        steps = self.steps(batch)
        images, labels = random_images(self.hparams["input_shape"],
                                       self.hparams["num_classes"], batch * steps,
                                       self.spec["seed"])
        timer = epoch_timer()
        if self.model is None:  # no host run before, or a device try ran out of memory
            keras.utils.set_random_seed(self.spec["seed"])
            with dtype_policy_scope(self.policy):
                self.model = build(self.job["model"], **self.hparams)
            compile_model(self.model, self.plan(batch, timer), steps)
        model, self.model = self.model, None  # a failed try must not keep it alive
        batches = device_batches(images, labels, batch, self.spec["seed"])
        model.fit(batches, epochs=1 + self.spec["repeats"], shuffle=False, verbose=0,
                  callbacks=[timer])
        self.data_device = _device_of(batches.x)
        return timer.wall, steps


def _device_of(tensor) -> str:
    devices = getattr(tensor, "devices", None)  # jax.Array
    if callable(devices):
        return ", ".join(str(d) for d in devices())
    return str(getattr(tensor, "device", "?"))


def _macs(job: dict[str, Any]) -> int:
    """Forward multiply-accumulates of the job's model: the registry's count at the model's
    own input and class count, else from the layer table of a model built for the job."""
    info = get_model_info(job["model"])
    if job["num_classes"] == info.num_classes:
        known = registry_macs(job["model"], job["input_shape"])
        if known is not None:
            return known
    macs = summarize(build(job["model"], input_shape=tuple(job["input_shape"]),
                           num_classes=job["num_classes"])).total_macs
    _release_memory()
    return macs


def _time_job(job: dict[str, Any], spec: dict[str, Any], results: Path, accelerated: bool
              ) -> None:
    macs = _macs(job)
    for policy in job["dtype_policies"]:
        runs = _ModelRuns(job, spec, policy, macs, accelerated)
        candidates = list(job["batch_sizes"])
        for feeding in job["feedings"]:
            row = {"kind": "row", "side": "zoo", "model": job["model"], "dtype_policy": policy,
                   "feeding": feeding, "input_shape": job["input_shape"],
                   "num_classes": job["num_classes"], "macs": macs}
            try:
                batch, (wall, steps), failed = largest_batch_that_fits(
                    candidates, getattr(runs, feeding), _release_memory)
                row.update(batch_size=batch, steps=steps, wall=wall, out_of_memory=failed)
                if feeding == "device":
                    row["data_device"] = runs.data_device
                # The next feeding starts from the batch that fitted, not above it.
                candidates = [b for b in candidates if b <= batch]
            except Exception as error:  # noqa: BLE001 - recorded; the other rows go on
                row.update(error=error_text(error))
            append_result(results, row)
            report_row("zoo", row)
        del runs
        _release_memory()


def run_jobs(spec: dict[str, Any], results: Path) -> None:
    """Time every configuration of ``spec`` (written by benchmarks/versus_torch.py), appending
    one JSON line per configuration to ``results``: facts, matmul peaks, then rows."""
    on_accelerator = accelerated()
    append_result(results, {"kind": "facts", "side": "zoo", **machine_facts(),
                            "accelerated": on_accelerator, "pid": os.getpid(),
                            "tensorflow_installed": has_tensorflow()})
    size = peak_size(spec, on_accelerator)
    for dtype in peak_dtypes(spec):
        peak = measure_matmul_peak(dtype, size=size, repeats=10)
        append_result(results, {"kind": "peak", "side": "zoo", "library": "keras.ops.matmul",
                                **peak})
    for job in spec["jobs"]:
        _time_job(job, spec, results, on_accelerator)
    append_result(results, {"kind": "done", "side": "zoo",
                            "tensorflow_loaded": "tensorflow" in sys.modules})


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.zoo_timing SPEC RESULTS``: run a job file, append results."""
    spec, results = argv if argv is not None else sys.argv[1:]
    run_jobs(json.loads(Path(spec).read_text()), Path(results))


if __name__ == "__main__":
    main()
