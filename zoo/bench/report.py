"""`zoo bench` reports: Markdown tables and JSON files under benchmarks/results/."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from zoo.core.runs import write_json_atomic, write_text_atomic

RESULTS_DIR = Path("benchmarks") / "results"


def rate_text(rate: dict[str, float] | None) -> str:
    """``median [min–max]`` of a ``spread`` of images/s, or n/a."""
    if rate is None:
        return "n/a"
    digits = ".3g" if rate["max"] < 1 else ",.1f"  # 224x224 VGGs train < 1 image/s on a CPU
    return f"{rate['median']:{digits}} [{rate['min']:{digits}}–{rate['max']:{digits}}]"


def yes_no(flag: bool | None) -> str:
    """yes, no, or ? for unknown."""
    return "?" if flag is None else ("yes" if flag else "no")


def _inference_cells(result: dict[str, Any] | None) -> list[str]:
    if result is None:
        return ["skipped", "", ""]
    lat = result["batch1_latency"]
    return [f"{result['batch1_images_per_s']['median']:,.1f}",
            f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}",
            f"{result['large_batch_images_per_s']['median']:,.1f} (b{result['large_batch']})"]


def format_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: machine facts, a training table and an inference table."""
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
        "Training, images/s: median [min–max] of the repeats, by wall clock and by process "
        "CPU time (which other load on the machine disturbs less).",
        "",
        "| model | input | batch × steps | zoo | zoo by CPU time | train GFLOP/image | "
        "% of peak | XLA |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['model']} | {'x'.join(map(str, row['input_shape']))} | "
            f"{row['batch_size']} × {row['steps']} | {rate_text(row['zoo_images_per_s'])} | "
            f"{rate_text(row['zoo_cpu_images_per_s'])} | "
            f"{row['train_flops_per_image'] / 1e9:.3g} | {100 * row['fraction_of_peak']:.1f}% | "
            f"{yes_no(row.get('zoo_jit_compile'))} |")
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
    return "\n".join(lines).rstrip() + "\n"


def _images_text(report: dict[str, Any]) -> str:
    dataset = report["settings"].get("dataset")
    if not dataset:
        return "random uint8 images of each model's input shape"
    shapes = sorted({"x".join(map(str, row["data_shape"])) for row in report["rows"]})
    return (f"real training images of `{dataset}` ({', '.join(shapes)}), fitted to each "
            f"model's input as `zoo train` fits them; inference on its test images")


def default_report_path(report: dict[str, Any]) -> Path:
    """benchmarks/results/bench-BACKEND-POLICY-TIME.json."""
    stamp = report["created"].replace(":", "").replace("-", "")
    return RESULTS_DIR / f"bench-{report['machine']['backend']}-{report['dtype_policy']}-" \
                         f"{stamp}.json"


def write_report(report: dict[str, Any], json_path: Path | None = None,
                 markdown: Callable[[dict[str, Any]], str] = format_markdown
                 ) -> tuple[Path, Path]:
    """Write the report as JSON and as ``markdown(report)`` beside it (same name, .md); both
    atomically."""
    json_path = Path(json_path) if json_path else default_report_path(report)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(json_path, report)
    md_path = json_path.with_suffix(".md")
    write_text_atomic(md_path, markdown(report))
    return json_path, md_path
