"""Shared fixtures: tiny configurations of every registered model and a tiny trained run."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

import zoo  # noqa: E402


def tiny_hparams(name: str) -> dict:
    """Hyperparameters that keep a model's structure but shrink widths so tests are fast.

    Every conv keeps its place, kernel and stride (so the geometry is the real one at the
    model's default input), only feature-map counts and dense widths shrink.
    """
    defaults = zoo.get_model_info(name).hyperparameters
    hparams = {"dropout": 0.0}
    filters = defaults["filters"]
    hparams["filters"] = 8 if isinstance(filters, int) else tuple(8 for _ in filters)
    hparams["dense_units"] = tuple(16 for _ in defaults["dense_units"])
    hparams["num_classes"] = 3
    return hparams


def with_quick_xla_compile(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a JAX process with XLA's backend (LLVM) optimisation off.

    Under JAX every train step is compiled by XLA, and compiling, not running, is most of a
    tiny test's time. The level changes how fast the compiled code runs, not the computation
    (the graph optimisations stay): the registry's every-builder step under JAX went from 32
    to 18 s of CPU, the device-input run from 37 to 26 s (2 cores, load 1.5). TensorFlow's
    Keras models here are not compiled by XLA unless a test forces it, so the pytest process
    keeps the default.
    """
    flags = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    return {**env, "XLA_FLAGS": flags}


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path, monkeypatch):
    """Every test runs in its own folder, so default saved_models/ paths land there, and with
    its own zoo cache (imported data sets, decoded image folders), never the user's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A lenet5 run trained briefly on the embedded digits (shared, read-only)."""
    from zoo.training.train import TrainPlan, train

    out = tmp_path_factory.mktemp("runs") / "tiny-lenet5"
    plan = TrainPlan(model="lenet5", hparams={"filters": (4, 8), "dense_units": (32, 16)},
                     epochs=3, batch_size=64, learning_rate=3e-3, out=str(out))
    train(plan, verbose=0)
    return out


@pytest.fixture(scope="session")
def python_without_tensorflow(tmp_path_factory) -> tuple[list[str], dict[str, str]]:
    """(interpreter command, environment) of this Python with every package but TensorFlow's,
    as on the JAX GPU machines: -S leaves the site-packages out, PYTHONPATH brings back the
    rest through links (shared, read-only). Besides being the machine under test, it saves
    the TensorFlow import that Keras' set_random_seed makes whenever TensorFlow is installed.
    """
    site = Path(sysconfig.get_paths()["purelib"])
    packages = tmp_path_factory.mktemp("no-tensorflow")
    for entry in site.iterdir():
        if not entry.name.startswith(("tensorflow", "tensorboard", "tf_keras")):
            (packages / entry.name).symlink_to(entry)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{packages}{os.pathsep}{root}", "KERAS_BACKEND": "jax",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    return [sys.executable, "-S"], env
