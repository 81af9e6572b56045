"""`zoo bench` reports: Markdown tables and JSON files under benchmarks/results/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from zoo.core.runs import write_json_atomic, write_text_atomic

RESULTS_DIR = Path("benchmarks") / "results"


def _rate_text(rate: dict[str, float] | None) -> str:
    if rate is None:
        return "n/a"
    digits = ".3g" if rate["max"] < 1 else ",.1f"  # 224x224 VGGs train < 1 image/s on a CPU
    return f"{rate['median']:{digits}} [{rate['min']:{digits}}–{rate['max']:{digits}}]"


def _yes_no(flag: bool | None) -> str:
    return "?" if flag is None else ("yes" if flag else "no")


def _inference_cells(result: dict[str, Any] | None) -> list[str]:
    if result is None:
        return ["skipped", "", ""]
    lat = result["batch1_latency"]
    return [f"{result['batch1_images_per_s']['median']:,.1f}",
            f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}",
            f"{result['large_batch_images_per_s']['median']:,.1f} (b{result['large_batch']})"]


def format_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: machine facts, a training table and an inference table (for a
    `--versus-torch` report, ``format_versus_markdown``)."""
    if report.get("kind") == "versus_torch":
        return format_versus_markdown(report)
    machine, settings = report["machine"], report["settings"]
    peaks = report["matmul_peak"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    load = machine.get("load_average")
    lines = [
        f"# zoo bench: {machine['backend']} backend, {report['dtype_policy']}, "
        f"{report['created']}",
        "",
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} CPUs, devices "
        f"{', '.join(machine['devices']) or 'n/a'}; load average at the end "
        f"{'n/a' if load is None else ', '.join(f'{v:.1f}' for v in load)}",
        f"- Versions: Python {machine['python']}, {versions}",
        "- Matmul peak (keras.ops.matmul, best of 12): " + ", ".join(
            f"{p['peak_gflops']:,.1f} GFLOP/s {dtype} at {p['size']}² (median "
            f"{p['median_gflops']:,.1f})"
            for dtype, p in peaks.items()),
        f"- Settings: {settings['repeats']} timed repeats after a warm-up epoch, augment "
        f"{'on' if settings['augment'] else 'off'}, seed {settings['seed']}",
        f"- Images: {_images_text(report)}",
    ]
    if report.get("command"):
        lines.append(f"- Command: `{report['command']}`")
    if settings.get("note"):
        lines.append(f"- Note: {settings['note']}")
    lines += [
        "",
        "Training, images/s: median [min–max]. Ratio = zoo / baseline medians (wall clock); "
        "worst repeat = the lowest zoo / baseline ratio of the repeats, each zoo repeat timed "
        "right before its baseline repeat; CPU ratio uses process CPU time, which other load "
        "on the machine disturbs less.",
        "",
        "| model | input | batch × steps | zoo | baseline | ratio | worst repeat | CPU ratio | "
        "train GFLOP/image | % of peak | XLA zoo / baseline |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        worst = ("n/a" if not row.get("repeat_ratios")
                 else f"{min(row['repeat_ratios']):.2f}x")
        cpu_ratio = "n/a" if row["cpu_ratio"] is None else f"{row['cpu_ratio']:.2f}x"
        lines.append(
            f"| {row['model']} | {'x'.join(map(str, row['input_shape']))} | "
            f"{row['batch_size']} × {row['steps']} | {_rate_text(row['zoo_images_per_s'])} | "
            f"{_rate_text(row['baseline_images_per_s'])} | {ratio} | {worst} | {cpu_ratio} | "
            f"{row['train_flops_per_image'] / 1e9:.3g} | {100 * row['fraction_of_peak']:.1f}% | "
            f"{_yes_no(row.get('zoo_jit_compile'))} / {_yes_no(row.get('baseline_jit_compile'))} |")
    lines += [
        "",
        "Inference, images/s (median) and batch-1 latency p50 / p99 in ms.",
        "",
        "| model | predict b1 | predict p50 / p99 | predict large batch | SavedModel b1 | "
        "SavedModel p50 / p99 | SavedModel large batch |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = set()
    for row in report["rows"]:
        inference = row["inference"]
        if inference.get("saved_model_note"):
            notes.add(inference["saved_model_note"])
        cells = (_inference_cells(inference["keras_predict"])
                 + _inference_cells(inference["saved_model"]))
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    lines += ["", *(f"SavedModel: {note}." for note in sorted(notes))]
    torch_rows = [row for row in report["rows"] if row.get("torch")]
    if torch_rows:
        lines += [
            "", "PyTorch peer (plain DataLoader + Adam loop, "
            f"torch {torch_rows[0]['torch']['version']}, in its own process after the Keras "
            "paths), training images/s, same data; worst = the zoo's slowest repeat / "
            "PyTorch's fastest:", "",
            "| model | zoo | PyTorch | ratio | worst | CPU ratio |", "|---|---|---|---|---|---|"]
        lines += [f"| {row['model']} | {_rate_text(row['zoo_images_per_s'])} | "
                  f"{_rate_text(row['torch']['images_per_s'])} | {row['torch']['ratio']:.2f}x | "
                  f"{_ratio_text(row['torch'].get('min_repeat_ratio'))} | "
                  f"{row['torch']['cpu_ratio']:.2f}x |" for row in torch_rows]
    return "\n".join(lines).rstrip() + "\n"


def _images_text(report: dict[str, Any]) -> str:
    dataset = report["settings"].get("dataset")
    if not dataset:
        return "random uint8 images of each model's input shape"
    shapes = sorted({"x".join(map(str, row["data_shape"])) for row in report["rows"]})
    return (f"real training images of `{dataset}` ({', '.join(shapes)}), fitted to each "
            f"model's input as `zoo train` fits them; inference on its test images")


def _ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def default_report_path(report: dict[str, Any]) -> Path:
    """benchmarks/results/bench-BACKEND-POLICY-TIME.json, or versus-torch-DEVICE-TIME.json."""
    stamp = report["created"].replace(":", "").replace("-", "")
    if report.get("kind") == "versus_torch":
        device = re.sub(r"[^a-z0-9]+", "-", report["device"].lower()).strip("-") or "device"
        return RESULTS_DIR / f"versus-torch-{device}-{stamp}.json"
    return RESULTS_DIR / f"bench-{report['machine']['backend']}-{report['dtype_policy']}-" \
                         f"{stamp}.json"


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
    return (f"{result['batch_size']} × {result['steps']}", _rate_text(result["images_per_s"]),
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
    """A `zoo bench --versus-torch` report as Markdown: device, peak, conventions, one table."""
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
        f"# zoo bench --versus-torch: {report['device']}, {report['created']}", "",
        f"- Device: {report['device']}; zoo side: {facts.get('backend', '?')} backend, devices "
        f"{', '.join(facts.get('devices', [])) or '?'}, TensorFlow imported: "
        f"{_yes_no(zoo.get('tensorflow_loaded'))}; PyTorch side: torch "
        f"{torch['facts'].get('version', 'not run')}, DataLoader workers "
        f"{torch['facts'].get('loader_workers', '?')}, cuDNN benchmark "
        f"{_yes_no(torch['facts'].get('cudnn_benchmark'))}, TensorFlow imported: "
        f"{_yes_no(torch.get('tensorflow_loaded'))}",
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
            f"{_ratio_text(row['ratio'])} | {_ratio_text(row['min_repeat_ratio'])} | "
            f"{zoo_tflops} | {torch_tflops} |")
    lines += ["", "Worst repeat = the zoo's slowest repeat / PyTorch's fastest."]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], json_path: Path | None = None) -> tuple[Path, Path]:
    """Write the report as JSON and as Markdown beside it (same name, .md); both atomically."""

    json_path = Path(json_path) if json_path else default_report_path(report)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(json_path, report)
    md_path = json_path.with_suffix(".md")
    write_text_atomic(md_path, format_markdown(report))
    return json_path, md_path
