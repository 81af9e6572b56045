"""Combine `zoo bench` and benchmarks/bench_peers.py JSON results into the README's tables
(files of `zoo bench` alone have no baseline: n/a in its columns).

    python benchmarks/summarize.py benchmarks/results/cpu-*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _rate(rate: dict | None) -> str:
    if rate is None:
        return "n/a"
    return f"{rate['median']:.2g}" if rate["median"] < 1 else f"{rate['median']:,.1f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def summarize(paths: list[Path]) -> str:
    """One training row and one inference row per model and setting, across result files."""
    train = ["| model | input | augment | batch × steps | zoo img/s | baseline img/s | ratio | "
             "worst repeat | CPU ratio | XLA zoo / baseline | % of matmul peak | results |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    infer = ["| model | predict b1 img/s | predict p50 / p99 ms | predict large batch img/s | "
             "SavedModel b1 img/s | SavedModel p50 / p99 ms | SavedModel large batch img/s |",
             "|---|---|---|---|---|---|---|"]
    torch = ["| model | zoo img/s | PyTorch img/s | ratio | worst | CPU ratio |",
             "|---|---|---|---|---|---|"]
    peaks = []
    for path in paths:
        report = json.loads(path.read_text())
        peak = report["matmul_peak"][report["compute_dtype"]]["peak_gflops"]
        peaks.append(peak)
        for row in report["rows"]:
            jit = [row.get("zoo_jit_compile"), row.get("baseline_jit_compile")]
            jit_text = " / ".join("?" if j is None else ("yes" if j else "no") for j in jit)
            train.append(
                f"| {row['model']} | {'x'.join(map(str, row['input_shape']))} | "
                f"{'yes' if row['augment'] else 'no'} | {row['batch_size']} × {row['steps']} | "
                f"{_rate(row['zoo_images_per_s'])} | {_rate(row.get('baseline_images_per_s'))} | "
                f"{_ratio(row.get('ratio'))} | {_ratio(min(row.get('repeat_ratios') or [None]))} | "
                f"{_ratio(row.get('cpu_ratio'))} | {jit_text} | "
                f"{100 * row['fraction_of_peak']:.0f}% of {peak:.0f} GFLOP/s | {path.stem} |")
            if row.get("torch"):
                t = row["torch"]
                torch.append(f"| {row['model']} | {_rate(row['zoo_images_per_s'])} | "
                             f"{_rate(t['images_per_s'])} | {_ratio(t['ratio'])} | "
                             f"{_ratio(t.get('min_repeat_ratio'))} | {_ratio(t['cpu_ratio'])} |")
            if row["augment"] or row.get("torch"):
                continue  # inference does not depend on how the model was trained
            cells = []
            for kind in ("keras_predict", "saved_model"):
                result = row["inference"][kind]
                if result is None:
                    cells += ["skipped (no TensorFlow)", "", ""]
                    continue
                lat = result["batch1_latency"]
                cells += [_rate(result["batch1_images_per_s"]),
                          f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}",
                          f"{_rate(result['large_batch_images_per_s'])} (b{result['large_batch']})"]
            infer.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    out = ["\n".join(train), "\n".join(infer)]
    if len(torch) > 2:
        out.append("\n".join(torch))
    return "\n\n".join(out) + "\n"


if __name__ == "__main__":
    print(summarize([Path(p) for p in sys.argv[1:]]), end="")
