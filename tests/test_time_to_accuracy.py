"""benchmarks/time_to_accuracy.py: both frameworks trained to a target on the test split, the
clock from process start, a run stopped at its target or its time limit; the PyTorch peer's
parts (batch-norm vgg_small, augmentation) checked against the zoo's."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "time_to_accuracy.py"
torch = pytest.importorskip("torch")


def load_script(name: str = "time_to_accuracy"):
    """A module of the benchmarks package (the checkout's root is on pytest's pythonpath)."""
    return importlib.import_module(f"benchmarks.{name}")


def run_script(tmp_path, *args) -> dict:
    out = tmp_path / "tta.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--tasks", "lenet5_modern-mnist",
                           "--dataset", "digits", "--json", str(out), *args],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| lenet5_modern-mnist |" in done.stdout  # the table
    return json.loads(out.read_text())


def test_both_frameworks_train_to_the_target_and_stop_there(tmp_path):
    report = run_script(tmp_path, "--target", "0.3", "--epochs", "4", "--time-limit", "300")
    rows = {row["framework"]: row for row in report["rows"]}
    assert set(rows) == {"zoo", "torch"}
    for row in rows.values():
        assert row["reached"] and row["stopped"] == "target", row
        # The run ended at the first epoch on target: the curve ends there.
        assert row["curve"][-1][0] == row["epochs_to_target"] <= 4
        assert all(accuracy < 0.3 for _, accuracy, _ in row["curve"][:-1])
        assert row["best_test_accuracy"] >= 0.3
        seconds = [s for _, _, s in row["curve"]]
        assert 0 < row["startup_seconds"] < seconds[0] and seconds == sorted(seconds)
        assert row["seconds_to_target"] == seconds[-1]
    assert rows["torch"]["versions"]["torch"] == torch.__version__
    assert "keras" in rows["zoo"]["versions"]


def test_a_run_over_its_time_limit_is_killed_and_reported_not_reached(tmp_path):
    report = run_script(tmp_path, "--frameworks", "zoo", "--time-limit", "1")
    (row,) = report["rows"]
    assert not row["reached"] and row["seconds_to_target"] is None
    assert row["stopped"] == "time limit (1 s)"


def test_torch_vgg_small_with_batch_norm_is_the_zoos_layer_for_layer():
    """With the zoo model's weights and batch statistics copied in, the peer in inference mode
    gives the same probabilities; epsilon and momentum are Keras' (PyTorch's momentum is
    1 - Keras')."""
    import keras

    import zoo
    from benchmarks.torch_models import build_torch_peer

    shape = (32, 32, 1)
    model = zoo.build("vgg_small", input_shape=shape, num_classes=10, normalization="batch")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # moving statistics away from their initial 0 and 1
        if "norm" in layer.name:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32")
                               for w in layer.get_weights()])
    peer = build_torch_peer("vgg_small", shape, 10, normalization="batch").eval()
    norms = [m for m in peer.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 7 and all(m.eps == 1e-3 and m.momentum == 0.1 for m in norms)
    with torch.no_grad():
        for name, module in peer.named_children():
            if not isinstance(module, torch.nn.Sequential):
                continue
            weights = model.get_layer(name).get_weights()
            kernel = weights[0]
            if kernel.ndim == 4:
                kernel = kernel.transpose(3, 2, 0, 1)
            else:  # fc1 after the flatten: Keras flattens (h, w, c), PyTorch (c, h, w)
                kernel = kernel.reshape(4, 4, 128, -1).transpose(2, 0, 1, 3).reshape(
                    2048, -1).T
            module[0].weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            gamma, beta, mean, variance = model.get_layer(f"{name}_norm").get_weights()
            for target, value in ((module[1].weight, gamma), (module[1].bias, beta),
                                  (module[1].running_mean, mean),
                                  (module[1].running_var, variance)):
                target.copy_(torch.from_numpy(value))
        kernel, bias = model.get_layer("predictions").get_weights()
        peer.predictions.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        peer.predictions.bias.copy_(torch.from_numpy(bias))
        images = rng.random((3, *shape), dtype=np.float32)
        logits = peer(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(torch.softmax(logits, dim=1).numpy(), expected, atol=2e-5)


def test_torch_augmentation_keeps_range_and_shape_and_is_off_at_zero():
    augment = load_script("time_to_accuracy_torch").augment
    script = load_script()
    torch.manual_seed(0)
    images = torch.rand(16, 1, 32, 32)
    augmented = augment(images, script.Augmentation(flip=True))
    assert augmented.shape == images.shape
    assert 0.0 <= float(augmented.min()) and float(augmented.max()) <= 1.0
    assert float((augmented - images).abs().mean()) > 0.01
    off = script.Augmentation(rotation=0, zoom=0, translate=0, brightness=0, contrast=0)
    np.testing.assert_array_equal(augment(images, off).numpy(), images.numpy())


@pytest.mark.parametrize("dtype_policy", ["float32", "mixed_bfloat16"])
def test_torch_peer_takes_device_and_precision_from_the_benchmarks_torch_peer(
        monkeypatch, dtype_policy):
    """One rule for both GPU comparisons: the device (TF32 float32 matmuls on CUDA, as JAX),
    memory format and autocast of benchmarks/versus_torch.py's peer."""
    from dataclasses import replace
    from types import SimpleNamespace

    from benchmarks import torch_peer

    calls: dict[str, list] = {"training_device": [], "precision_settings": []}
    for name, found in calls.items():
        real = getattr(torch_peer, name)
        monkeypatch.setattr(torch_peer, name, lambda *args, real=real, found=found: (
            found.append(args), real(*args))[1])
    train_to_target = load_script("time_to_accuracy_torch").train_to_target
    task = replace(load_script().TASKS["lenet5_modern-mnist"], epochs=1, batch_size=4,
                   target=2.0, dtype_policy=dtype_policy)
    rng = np.random.default_rng(0)
    data = SimpleNamespace(x_train=rng.integers(0, 256, (8, 32, 32, 1), dtype=np.uint8),
                           y_train=np.arange(8) % 10, num_classes=10,
                           x_test=rng.integers(0, 256, (4, 32, 32, 1), dtype=np.uint8),
                           y_test=np.arange(4))
    events: list[dict] = []
    train_to_target(task, data, 0.0, lambda **event: events.append(event))
    assert calls == {"training_device": [()], "precision_settings": [(dtype_policy,)]}
    assert [e["event"] for e in events] == ["ready", "epoch"] and events[0]["device"] == "cpu"


def test_the_zoo_recipes_of_the_tasks_are_the_results_table_commands():
    from recipes import parse_recipes

    script = load_script()
    lenet, vgg = script.TASKS["lenet5_modern-mnist"], script.TASKS["vgg_small-fashion"]
    assert [r.spec() for r in parse_recipes(lenet.recipes())] == [
        "augment:flip=none,fill=constant", "schedule"]
    assert [r.spec() for r in parse_recipes(vgg.recipes())] == [
        "augment:rotation=0.0,flip=horizontal,fill=constant", "batchnorm", "schedule"]
