"""The report of benchmarks/versus_torch.py: Markdown, and where it is written by default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from zoo.bench.report import RESULTS_DIR, rate_text, yes_no


def default_versus_path(report: dict[str, Any]) -> Path:
    """benchmarks/results/versus-torch-DEVICE-TIME.json."""
    stamp = report["created"].replace(":", "").replace("-", "")
    device = re.sub(r"[^a-z0-9]+", "-", report["device"].lower()).strip("-") or "device"
    return RESULTS_DIR / f"versus-torch-{device}-{stamp}.json"


def ratio_text(value: float | None) -> str:
    """``1.23x``, or n/a."""
    return "n/a" if value is None else f"{value:.2f}x"


FEEDING_TEXT = {
    "host": "from uint8 arrays in host memory, as each framework's users feed it: the zoo "
            "through its own input path (`zoo.training.train.train`), PyTorch through a DataLoader "
            "over "
            "uint8 tensors (one indexed gather per batch, pinned memory and worker processes "
            "with CUDA), non-blocking copies, cast and scaled on the device",
    "device": "the whole data set resident on the device as float32, each batch gathered "
              "there (the upper bound: no input cost): the zoo's compiled model fitted on a "
              "PyDataset of device arrays, PyTorch indexing device tensors",
}
POLICY_TEXT = {
    "float32": "float32 (TF32 tensor-core math on GPUs on both sides: JAX's default, "
               "`torch.set_float32_matmul_precision('high')`)",
    "mixed_bfloat16": "Keras' `mixed_bfloat16` policy against `torch.autocast(bfloat16)` with "
                      "`channels_last`",
}


def _side_cells(result: dict[str, Any] | None) -> tuple[str, str, str]:
    """(batch × steps, images/s, TFLOP/s and % of peak) of one side of a versus row."""
    if result is None:
        return "–", "not run", ""
    if "error" in result:
        return "–", f"failed: {result['error']}", ""
    fraction = 100 * result["fraction_of_peak"]
    return (f"{result['batch_size']} × {result['steps']}", rate_text(result["images_per_s"]),
            f"{_tflops_text(result['tflops'])} ({fraction:.1f}%)" if fraction >= 0.1 else
            f"{_tflops_text(result['tflops'])} ({fraction:.2g}%)")


def _batch_cell(row: dict[str, Any]) -> str:
    """The batch × steps both sides ran (two when they differ) and what did not fit."""
    (zoo, *_), (torch, *_) = _side_cells(row["zoo"]), _side_cells(row["torch"])
    text = zoo if torch in (zoo, "–") else f"{zoo} / {torch}"
    too_big = [f"{name}: {', '.join(map(str, result['out_of_memory']))}"
               for name, result in (("zoo", row["zoo"]), ("PyTorch", row["torch"]))
               if result and result.get("out_of_memory")]
    return text + (f" (did not fit: {'; '.join(too_big)})" if too_big else "")


def _tflops_text(tflops: float) -> str:
    return f"{tflops:,.1f}" if tflops >= 10 else f"{tflops:.3g}"  # a CPU does < 1 TFLOP/s


def format_versus_markdown(report: dict[str, Any]) -> str:
    """A benchmarks/versus_torch.py report as Markdown: device, peak, conventions, one table."""
    zoo, torch, settings = report["zoo"], report["torch"], report["settings"]
    facts = zoo["facts"]
    versions = ", ".join(f"{k} {v}" for k, v in facts.get("versions", {}).items())
    peak = report.get("peak")
    peaks = "; ".join(
        f"{side} ({p['library']}): " + ", ".join(
            f"{dtype} {_tflops_text(q['peak_gflops'] / 1e3)}" for dtype, q in sides.items())
        for side, sides in (("zoo", zoo["matmul_peak"]), ("PyTorch", torch["matmul_peak"]))
        if sides for p in [next(iter(sides.values()))])
    lines = [
        f"# zoo versus PyTorch: {report['device']}, {report['created']}", "",
        f"- Device: {report['device']}; zoo side: {facts.get('backend', '?')} backend, devices "
        f"{', '.join(facts.get('devices', [])) or '?'}, TensorFlow imported: "
        f"{yes_no(zoo.get('tensorflow_loaded'))}; PyTorch side: torch "
        f"{torch['facts'].get('version', 'not run')}, DataLoader workers "
        f"{torch['facts'].get('loader_workers', '?')}, cuDNN benchmark "
        f"{yes_no(torch['facts'].get('cudnn_benchmark'))}, TensorFlow imported: "
        f"{yes_no(torch.get('tensorflow_loaded'))}",
        f"- Versions: Python {facts.get('python', '?')}, {versions}",
        "- Peak: " + ("not measured" if peak is None else
                      f"{_tflops_text(peak['gflops'] / 1e3)} TFLOP/s, the best bf16 dense "
                      f"matmul of {peak['size']}³ measured in this run ({peak['library']})")
        + (f"; all, TFLOP/s: {peaks}" if peaks else ""),
        f"- FLOPs: {report['flops_convention']}; % of peak = achieved training TFLOP/s / the "
        f"bf16 peak, for the float32 rows too",
        f"- Settings: {settings['repeats']} timed repeats after a warm-up epoch (median "
        f"[min–max] images/s); batch: {settings['batch_size']}, or the largest below it that "
        f"fits, tried largest first; PyTorch gets the zoo's batch and steps; seed "
        f"{settings['seed']}; random uint8 images",
    ]
    if report.get("command"):
        lines.append(f"- Command: `{report['command']}`")
    if settings.get("note"):
        lines.append(f"- Note: {settings['note']}")
    for side, name in (("zoo", "zoo side"), ("torch", "PyTorch side")):
        if report[side].get("failure"):
            lines.append(f"- **{name}: {report[side]['failure']}**")
    lines += [
        "", "Feeding: " + "; ".join(f"**{k}**: {v}" for k, v in FEEDING_TEXT.items()) + ".",
        "Precision: " + "; ".join(f"**{k}**: {v}" for k, v in POLICY_TEXT.items()) + ".", "",
        "| model | input | precision | feeding | batch × steps (zoo / PyTorch) | zoo img/s | "
        "PyTorch img/s | zoo / PyTorch | worst repeat | zoo TFLOP/s (% of peak) | "
        "PyTorch TFLOP/s (% of peak) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        _, zoo_rate, zoo_tflops = _side_cells(row["zoo"])
        _, torch_rate, torch_tflops = _side_cells(row["torch"])
        lines.append(
            f"| {row['model']} | {'x'.join(map(str, row['input_shape']))} | "
            f"{row['dtype_policy']} | {row['feeding']} | {_batch_cell(row)} | {zoo_rate} | "
            f"{torch_rate} | "
            f"{ratio_text(row['ratio'])} | {ratio_text(row['min_repeat_ratio'])} | "
            f"{zoo_tflops} | {torch_tflops} |")
    lines += ["", "Worst repeat = the zoo's slowest repeat / PyTorch's fastest."]
    return "\n".join(lines) + "\n"
