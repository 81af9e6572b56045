"""benchmarks/versus_torch.py: the zoo against its PyTorch peer, each side in its own process.

Correctness only (fields, files, batch search, synchronised timing, no TensorFlow under JAX);
speed is the benchmark's job on a GPU.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from benchmarks import versus_torch
from benchmarks.peer_jobs import (
    batch_candidates,
    is_out_of_memory,
    largest_batch_that_fits,
    read_results,
)
from benchmarks.versus_report import format_versus_markdown
from benchmarks.versus_torch import VersusSettings, combine

ROOT = Path(__file__).resolve().parents[1]
XLA_OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 2147483648 bytes."


def test_batch_candidates_step_down_from_the_largest():
    assert batch_candidates(256) == [256, 192, 128, 96, 64, 48, 32, 24, 16, 12]
    assert batch_candidates(4) == [4, 3, 2, 1]


def test_only_out_of_memory_errors_step_the_batch_down():
    assert is_out_of_memory(RuntimeError(XLA_OOM))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert not is_out_of_memory(ValueError("Input 0 of layer conv1 is incompatible"))
    tried, released = [], []

    def attempt(batch):
        tried.append(batch)
        if batch > 64:
            raise RuntimeError(XLA_OOM)
        return batch * 10

    assert largest_batch_that_fits([256, 128, 64, 32], attempt, lambda: released.append(1)) \
        == (64, 640, [256, 128])
    assert tried == [256, 128, 64] and len(released) == 2

    def broken(batch):
        raise ValueError("Input 0 of layer conv1 is incompatible")

    with pytest.raises(ValueError, match="incompatible"):
        largest_batch_that_fits([8, 4], broken)
    with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):  # nothing fits
        largest_batch_that_fits([8, 4], lambda batch: attempt(batch * 100))


def test_epoch_timer_waits_for_the_device_before_it_stops(monkeypatch):
    """The clock stops after the queued steps have run (JAX and GPUs return from a step as
    soon as it is queued): the timer reads the step counter back once per epoch."""
    import keras

    from zoo.bench import timing

    waited = []
    monkeypatch.setattr(timing, "wait_for_training", lambda model: waited.append(model))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    timer = timing.epoch_timer()
    model.fit(np.zeros((8, 3)), np.zeros((8, 2)), batch_size=4, epochs=2, verbose=0,
              callbacks=[timer])
    assert waited == [model, model] and len(timer.wall) == 2


def test_device_batches_stay_backend_tensors_and_cover_every_image():
    import keras

    from benchmarks.zoo_timing import device_batches

    images = np.arange(10 * 2 * 2 * 1, dtype=np.uint8).reshape(10, 2, 2, 1)
    batches = device_batches(images, np.arange(10), batch_size=4, seed=0)
    assert len(batches) == 3
    seen = []
    for i in range(len(batches)):
        x, y = batches[i]
        assert keras.ops.is_tensor(x) and not isinstance(x, np.ndarray)
        assert keras.backend.standardize_dtype(x.dtype) == "float32"
        x, y = keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y)
        np.testing.assert_allclose(x, images[y] / 255.0, rtol=1e-6)
        seen += y.tolist()
    assert sorted(seen) == list(range(10))


def test_zoo_side_times_both_feedings_and_steps_down_when_out_of_memory(tmp_path,
                                                                        monkeypatch):
    """The zoo's side of the comparison (in this process here): facts, peaks, one row per
    feeding; a batch that runs out of memory is recorded and the next one is timed, and the
    device feeding starts from the batch that fitted."""
    from benchmarks import zoo_timing

    real_host = zoo_timing._ModelRuns.host

    def small_memory(self, batch):
        if batch > 4:
            raise RuntimeError(XLA_OOM)
        return real_host(self, batch)

    monkeypatch.setattr(zoo_timing._ModelRuns, "host", small_memory)
    job = {"model": "lenet5", "input_shape": [32, 32, 1], "num_classes": 10, "steps": 2,
           "batch_sizes": [8, 6, 4, 3], "dtype_policies": ["float32"],
           "feedings": ["host", "device"]}
    results = tmp_path / "zoo.jsonl"
    zoo_timing.run_jobs({"seed": 0, "repeats": 2, "peak_size": 32, "jobs": [job]}, results)
    lines = read_results(results)
    assert [line["kind"] for line in lines] == ["facts", "peak", "peak", "row", "row", "done"]
    assert {line["dtype"] for line in lines[1:3]} == {"bfloat16", "float32"}
    host, device = lines[3:5]
    assert host["feeding"] == "host" and host["out_of_memory"] == [8, 6]
    assert device["feeding"] == "device" and device["out_of_memory"] == []
    for row in (host, device):
        assert row["batch_size"] == 4 and row["steps"] == 2 and len(row["wall"]) == 3
        assert row["macs"] == zoo.get_model_info("lenet5").macs
    assert device["data_device"]


def _lines(side, peak, rows):
    facts = {"kind": "facts", "side": side, "backend": "jax", "devices": ["gpu:Test GPU"],
             "versions": {"keras": "3"}, "python": "3", "device": "Test GPU", "version": "2"}
    return [facts, {"kind": "peak", "side": side, "dtype": "bfloat16", "size": 8192,
                    "peak_gflops": peak, "median_gflops": peak, "library": side},
            *({"kind": "row", "side": side, "model": "lenet5", "input_shape": [32, 32, 1],
               "macs": 1000, **row} for row in rows),
            {"kind": "done", "side": side, "tensorflow_loaded": False}]


def test_report_combines_both_sides_into_ratios_and_fractions_of_peak():
    settings = VersusSettings(repeats=2)
    zoo_lines = _lines("zoo", 1000.0, [
        {"dtype_policy": "float32", "feeding": "host", "batch_size": 8, "steps": 2,
         "wall": [9.0, 0.5, 0.25], "out_of_memory": [16]},
        {"dtype_policy": "float32", "feeding": "device", "error": "XlaRuntimeError: boom"}])
    torch_lines = _lines("torch", 2000.0, [
        {"dtype_policy": "float32", "feeding": "host", "batch_size": 8, "steps": 2,
         "wall": [3.0, 1.0, 0.5], "out_of_memory": []},
        {"dtype_policy": "float32", "feeding": "device", "batch_size": 4, "steps": 2,
         "wall": [3.0, 1.0, 0.5], "out_of_memory": [8]}])
    combined = combine(zoo_lines, torch_lines, settings)
    assert combined["peak"]["gflops"] == 2000.0 and combined["peak"]["library"] == "torch"
    host, device = combined["rows"]
    # 16 images per repeat: zoo 32 and 64 images/s (the warm-up epoch left out), PyTorch 16, 32.
    assert host["zoo"]["images_per_s"]["median"] == 48 and host["torch"]["images_per_s"][
        "median"] == 24
    assert host["ratio"] == 2.0 and host["min_repeat_ratio"] == 1.0 and host["same_batch"]
    assert host["train_flops_per_image"] == 6000
    assert host["zoo"]["tflops"] == pytest.approx(48 * 6000 / 1e12)
    assert host["zoo"]["fraction_of_peak"] == pytest.approx(48 * 6000 / 2e12)
    assert device["ratio"] is None and device["zoo"] == {"error": "XlaRuntimeError: boom"}

    report = {**versus_torch._report(settings, {"zoo": zoo_lines, "torch": torch_lines},
                                     {"zoo": [], "torch": []}), "command": "versus_torch.py"}
    text = format_versus_markdown(report)
    assert "# zoo versus PyTorch: Test GPU" in text
    assert "| lenet5 | 32x32x1 | float32 | host | 8 × 2 (did not fit: zoo: 16) | " \
           "48.0 [32.0–64.0] | 24.0 [16.0–32.0] | 2.00x | 1.00x |" in text
    assert "| device | – / 4 × 2 (did not fit: PyTorch: 8) | failed: XlaRuntimeError: boom |" \
        in text
    assert "3 x 2 x forward MACs" in text and "2 TFLOP/s, the best bf16" in text


def test_each_model_runs_in_a_pair_of_processes_zoo_first(monkeypatch):
    """Per model: the zoo's process, then PyTorch's at the zoo's batch and steps; the peaks
    are measured by the first pair only; the report is written after every process."""
    started = []

    class FakeSide:
        def __init__(self, command, env):
            spec = json.loads(Path(command[-2]).read_text())
            side = "torch" if "benchmarks.torch_peer" in command else "zoo"
            started.append((side, [job["model"] for job in spec["jobs"]], spec["measure_peak"],
                            [(job["batch_sizes"][0], job["steps"]) for job in spec["jobs"]]))
            rows = [{"dtype_policy": "float32", "feeding": "host", "batch_size": 6, "steps": 3,
                     "wall": [1.0, 0.5 if side == "zoo" else 1.0], "out_of_memory": [8]}]
            lines = _lines(side, 1000.0, rows)
            for line in lines:
                line.update(model=spec["jobs"][0]["model"]) if line["kind"] == "row" else None
            Path(command[-1]).write_text("".join(json.dumps(line) + "\n" for line in lines))

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(versus_torch.subprocess, "Popen", FakeSide)
    # Both sides are faked: the orchestration runs where PyTorch is not installed (CI).
    monkeypatch.setattr(versus_torch, "has_torch", lambda: True)
    written = []
    report = versus_torch.compare_with_torch(
        ["lenet5", "vgg_small"], VersusSettings(batch_size=8, feedings=("host",),
                                                dtype_policies=("float32",)),
        checkpoint=written.append)
    assert started == [("zoo", ["lenet5"], True, [(8, None)]),
                       ("torch", ["lenet5"], True, [(6, 3)]),
                       ("zoo", ["vgg_small"], False, [(8, None)]),
                       ("torch", ["vgg_small"], False, [(6, 3)])]
    assert len(written) == 4 and [r["model"] for r in report["rows"]] == ["lenet5", "vgg_small"]
    assert all(row["ratio"] == 2.0 for row in report["rows"])
    assert report["zoo"]["failure"] is None and report["torch"]["tensorflow_loaded"] is False


def test_a_kill_during_the_torch_side_keeps_what_was_measured(monkeypatch):
    """SIGTERM (timeout) or Ctrl-C while PyTorch's side runs: that process is stopped, and
    the report with the zoo's rows and PyTorch's finished ones is written before the
    interruption goes on."""
    zoo_rows = _lines("zoo", 1000.0, [
        {"dtype_policy": "float32", "feeding": f, "batch_size": 8, "steps": 2,
         "wall": [1.0, 0.5], "out_of_memory": []} for f in ("host", "device")])
    torch_rows = _lines("torch", 1000.0, [
        {"dtype_policy": "float32", "feeding": "host", "batch_size": 8, "steps": 2,
         "wall": [1.0, 1.0], "out_of_memory": []}])[:-1]  # no "done": still running
    terminated = []

    class FakeSide:
        def __init__(self, command, env):
            self.results = Path(command[-1])
            side = "torch" if "benchmarks.torch_peer" in command else "zoo"
            self.results.write_text("".join(json.dumps(line) + "\n" for line in
                                            (zoo_rows if side == "zoo" else torch_rows)))
            self.side = side

        def wait(self, timeout=None):
            if self.side == "torch" and not terminated:
                raise KeyboardInterrupt("signal 15")
            return 0

        def terminate(self):
            terminated.append(self.side)

    monkeypatch.setattr(versus_torch.subprocess, "Popen", FakeSide)
    # Both sides are faked: the orchestration runs where PyTorch is not installed (CI).
    monkeypatch.setattr(versus_torch, "has_torch", lambda: True)
    written = []
    with pytest.raises(KeyboardInterrupt):
        versus_torch.compare_with_torch(["lenet5"], VersusSettings(repeats=1,
                                                                   feedings=("host", "device"),
                                                                   dtype_policies=("float32",)),
                                        checkpoint=written.append)
    assert terminated == ["torch"]
    first, last = written
    assert first["torch"]["failure"] is None and first["rows"][0]["torch"] is None
    assert last["torch"]["failure"] == "lenet5: interrupted"
    host, device = last["rows"]
    assert host["ratio"] == 2.0 and device["torch"] is None and device["zoo"]


def test_versus_torch_refuses_what_it_cannot_compare(tmp_path):
    """In one line, before any process starts or any file is written."""
    runner = CliRunner()
    out = tmp_path / "none.json"
    for args, message in [
        (["lenet5", "--dtype-policy", "mixed_float16"],
         "takes dtype policies float32 and mixed_bfloat16"),
        (["lenet6"], "lenet5"),  # close matches
    ]:
        result = runner.invoke(versus_torch.main, [*args, "--json", str(out)])
        assert result.exit_code == 1, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_versus_torch_runs_end_to_end_under_jax_without_tensorflow(tmp_path,
                                                                   python_without_tensorflow):
    """The GPU command, tiny, on the CPU: both sides in their own processes, both
    precisions, both feedings, the report written, TensorFlow neither installed nor imported."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    python, env = python_without_tensorflow
    out = tmp_path / "results" / "versus.json"
    done = subprocess.run(
        [*python, str(ROOT / "benchmarks" / "versus_torch.py"), "lenet5", "--batch-size", "8",
         "--steps", "2", "--repeats", "1", "--peak-size", "64", "--dtype-policy", "float32",
         "--dtype-policy", "mixed_bfloat16", "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["zoo"]["facts"]["backend"] == "jax"
    assert report["zoo"]["facts"]["tensorflow_installed"] is False
    assert report["zoo"]["tensorflow_loaded"] is False
    assert report["torch"]["tensorflow_loaded"] is False
    assert report["torch"]["facts"]["pid"] != report["zoo"]["facts"].get("pid", -1)
    assert report["peak"]["size"] == 64 and report["peak"]["gflops"] > 0
    assert [(r["dtype_policy"], r["feeding"]) for r in report["rows"]] == [
        ("float32", "host"), ("float32", "device"), ("mixed_bfloat16", "host"),
        ("mixed_bfloat16", "device")]
    for row in report["rows"]:
        for side in ("zoo", "torch"):
            assert row[side]["batch_size"] == 8 and row[side]["steps"] == 2
            assert len(row[side]["images_per_s"]["values"]) == 1
            assert 0 < row[side]["fraction_of_peak"]
        assert row["ratio"] == pytest.approx(row["zoo"]["images_per_s"]["median"]
                                             / row["torch"]["images_per_s"]["median"])
    assert report["command"].startswith("python benchmarks/versus_torch.py lenet5")
    markdown = out.with_suffix(".md").read_text()
    assert markdown.count("| lenet5 | 32x32x1 |") == 4
    assert "zoo lenet5 mixed_bfloat16 device: batch 8 x 2 steps" in done.stderr
