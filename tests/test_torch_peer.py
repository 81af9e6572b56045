"""benchmarks/torch_peer.py, the zoo's PyTorch peer: the same architectures as the registry, layer
by layer and output for output, and a training loop that runs in every feeding and precision.

Speed is the benchmark's job (benchmarks/versus_torch.py); here only correctness, on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from benchmarks.torch_models import TORCH_PEERS, build_torch_peer

torch = pytest.importorskip("torch")

# Small inputs that keep every layer's geometry valid, so the big models build quickly.
SMALL_INPUT = {"alexnet": (67, 67, 3), "alexnet_torchvision": (67, 67, 3),
               "vgg11": (32, 32, 3), "vgg13": (32, 32, 3), "vgg16": (32, 32, 3),
               "vgg19": (32, 32, 3)}
# torch module -> the Keras layer class it stands for.
KERAS_KIND = {"Conv2d": "Conv2D", "Linear": "Dense", "MaxPool2d": "MaxPooling2D",
              "AvgPool2d": "AveragePooling2D", "Flatten": "Flatten", "Dropout": "Dropout",
              "ZeroPad2d": "ZeroPadding2D"}
ACTIVATION = {"ReLU": "relu", "Tanh": "tanh"}


def _torch_layers(peer, shape) -> list[tuple]:
    """(name, Keras kind, activation, output shape as HWC, parameters) of each named child."""
    x = torch.rand(2, shape[2], shape[0], shape[1])
    rows = []
    for name, module in peer.named_children():
        parts = list(module) if isinstance(module, torch.nn.Sequential) else [module]
        x = module(x)
        out = tuple(x.shape[1:])
        activation = next((ACTIVATION[type(p).__name__] for p in parts[1:]), None)
        rows.append((name, KERAS_KIND[type(parts[0]).__name__], activation,
                     (*out[1:], out[0]) if len(out) == 3 else out,
                     sum(p.numel() for p in module.parameters())))
    return rows


def _keras_layers(model) -> list[tuple]:
    from zoo.core.layer_table import summarize

    rows = []
    for row in summarize(model).rows:
        activation = getattr(model.get_layer(row.name), "activation", None)
        activation = getattr(activation, "__name__", None)
        if row.name == "predictions":
            activation = None  # softmax in Keras; the peer returns logits for its loss
        rows.append((row.name, row.kind, None if activation == "linear" else activation,
                     tuple(row.output_shape), row.params))
    return rows


def _copy_keras_weights(model, peer, shape) -> None:
    """Keras kernels into the peer: HWIO -> OIHW convs, transposed dense kernels, and fc1's
    input rows from Keras' (h, w, c) flatten order to torch's (c, h, w)."""
    feature_map = None
    x = torch.rand(1, shape[2], shape[0], shape[1])
    with torch.no_grad():
        for name, module in peer.named_children():
            if name == "flatten":
                feature_map = tuple(x.shape[1:])  # (C, H, W) before flattening
            x = module(x)
            layer = module[0] if isinstance(module, torch.nn.Sequential) else module
            if not isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                continue
            kernel, bias = model.get_layer(name).get_weights()
            if isinstance(layer, torch.nn.Conv2d):
                kernel = kernel.transpose(3, 2, 0, 1)
            else:
                if feature_map is not None:  # the first dense layer after the flatten
                    c, h, w = feature_map
                    kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(
                        c * h * w, -1)
                    feature_map = None
                kernel = kernel.T
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            layer.bias.copy_(torch.from_numpy(bias))


@pytest.mark.parametrize("name", sorted(TORCH_PEERS))
def test_torch_peer_is_the_registry_model_layer_by_layer(name):
    """Every named layer of the peer has the Keras layer's kind, activation, output shape and
    parameter count; with the Keras weights copied in, both give the same probabilities."""
    import keras

    shape = SMALL_INPUT.get(name, zoo.get_model_info(name).input_shape)
    model = zoo.build(name, input_shape=shape, num_classes=7)
    peer = build_torch_peer(name, shape, 7).eval()
    assert _torch_layers(peer, shape) == _keras_layers(model)

    _copy_keras_weights(model, peer, shape)
    images = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    with torch.no_grad():
        logits = peer(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(torch.softmax(logits, dim=1).numpy(), expected, atol=2e-5)
    keras.backend.clear_session()


def test_every_model_the_issue_names_has_a_peer():
    assert {"lenet5", "vgg_small", "alexnet", "vgg16"} <= set(TORCH_PEERS)
    assert set(TORCH_PEERS) <= set(zoo.list_models())


@pytest.mark.parametrize("feeding", ["float", "host", "device"])
@pytest.mark.parametrize("dtype_policy", ["float32", "mixed_bfloat16"])
def test_torch_peer_trains_in_every_feeding_and_precision(feeding, dtype_policy):
    from benchmarks.torch_peer import TorchPeer

    images = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    peer = TorchPeer("vgg_small", images, np.arange(10) % 10, 10, batch_size=4, seed=0,
                     feeding=feeding, dtype_policy=dtype_policy, device="cpu")
    before = [p.detach().clone() for p in peer.model.parameters()]
    steps = []
    peer.step = lambda x, y, step=peer.step: (steps.append((x, y)), step(x, y))
    peer.run_epoch()
    # Every image once per epoch, in batches of 4, as float [0, 1] on the device.
    assert [len(y) for _, y in steps] == [4, 4, 2]
    assert sorted(torch.cat([y for _, y in steps]).tolist()) == list(range(10))
    for x, _ in steps:
        assert x.dtype == torch.float32 and x.device.type == "cpu" and 0 <= x.min() <= x.max() <= 1
        assert x.is_contiguous(memory_format=peer.memory_format)
    first = torch.cat([x for x, _ in steps])
    assert sorted(first.sum(dim=(1, 2, 3)).tolist()) == pytest.approx(
        sorted(images.reshape(10, -1).sum(axis=1) / 255.0), rel=1e-5)
    assert all(not torch.equal(a, b) for a, b in zip(before, peer.model.parameters()))
    assert len(peer.wall) == 1 and peer.wall[0] > 0
    mixed = dtype_policy == "mixed_bfloat16"
    assert (peer.autocast_dtype == torch.bfloat16) is mixed
    assert peer.model[0][0].weight.is_contiguous(
        memory_format=torch.channels_last if mixed else torch.contiguous_format)


def test_torch_peer_refuses_what_it_cannot_run():
    from benchmarks.torch_peer import TorchPeer

    images = np.zeros((4, 32, 32, 1), dtype=np.uint8)
    with pytest.raises(ValueError, match="feeding must be one of float, host, device"):
        TorchPeer("lenet5", images, np.zeros(4), 10, 2, 0, feeding="disk")
    with pytest.raises(ValueError, match="float32 or mixed_bfloat16"):
        TorchPeer("lenet5", images, np.zeros(4), 10, 2, 0, dtype_policy="mixed_float16")


def test_cuda_training_uses_tf32_matmuls_and_mixed_bfloat16_channels_last(monkeypatch):
    """The rules both GPU comparisons share (versus_torch, time_to_accuracy):
    float32 on CUDA with TF32 matmuls, as JAX's default precision does; only flags are set,
    so no GPU is needed."""
    from benchmarks.torch_peer import precision_settings, training_device

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        assert training_device("cpu").type == "cpu"
        assert torch.get_float32_matmul_precision() == "highest"  # the CPU is left alone
        assert training_device("cuda").type == "cuda"
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.benchmark
    finally:
        torch.set_float32_matmul_precision(before)
    assert precision_settings("float32") == (torch.contiguous_format, None)
    assert precision_settings("mixed_bfloat16") == (torch.channels_last, torch.bfloat16)
    with pytest.raises(ValueError, match="float32 or mixed_bfloat16"):
        precision_settings("mixed_float16")


def test_torch_matmul_peak_is_measured():
    from benchmarks.torch_peer import matmul_peak

    peak = matmul_peak(64, "bfloat16", device="cpu", repeats=3)
    assert peak["peak_gflops"] >= peak["median_gflops"] > 0 and peak["size"] == 64


def test_torch_side_runs_a_job_file_and_steps_down_when_out_of_memory(tmp_path, monkeypatch):
    """The PyTorch side of versus_torch.py: facts, peaks and one row per configuration; a
    batch that runs out of memory is recorded and the next smaller one is timed."""
    from benchmarks import torch_peer
    from benchmarks.peer_jobs import read_results

    real = torch_peer.TorchPeer

    class SmallMemory(real):
        def __init__(self, name, images, labels, num_classes, batch_size, *args, **kwargs):
            if batch_size > 4:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
            super().__init__(name, images, labels, num_classes, batch_size, *args, **kwargs)

    monkeypatch.setattr(torch_peer, "TorchPeer", SmallMemory)
    job = {"model": "lenet5", "input_shape": [32, 32, 1], "num_classes": 10, "steps": 2,
           "batch_sizes": [8, 6, 4, 3], "dtype_policies": ["float32"],
           "feedings": ["host", "device"]}
    results = tmp_path / "torch.jsonl"
    torch_peer.run_jobs({"seed": 0, "repeats": 2, "peak_size": 32, "loader_workers": None,
                         "device": "cpu", "jobs": [job]}, results)
    lines = read_results(results)
    assert [line["kind"] for line in lines] == ["facts", "peak", "peak", "row", "row", "done"]
    assert lines[0]["device"] == "cpu" and lines[0]["loader_workers"] == 0
    for row, feeding in zip(lines[3:5], ["host", "device"]):
        assert row["feeding"] == feeding and row["batch_size"] == 4
        assert row["out_of_memory"] == [8, 6] and len(row["wall"]) == 3  # warm-up + 2
