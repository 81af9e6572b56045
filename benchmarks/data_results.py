"""Rebuild results/data.csv and the results table of docs/data.md from finished training runs.

Each entry of ROWS is one model x data set x recipe: the exact `zoo train` command (S stands
for the seed), the run directories of its seeds and the machine they ran on. A run counts once
`zoo train` has written its metrics.json (after the test evaluation); unfinished seeds are left
out and the row lists the seeds it has. Before a run is used its config.json is checked against
the command (model, data set, epochs, batch size, recipe names), so a row cannot quote a
command its runs did not execute.

The small files of each finished run (config.json, metrics.json, history.csv, and RUN.load,
the `uptime` lines at its start and end written beside the run directory) are copied into
results/runs/NAME/, and the table is built from there: it can be rebuilt from the repository
alone after the run directories are gone.

    python benchmarks/data_results.py          # collect; results/data.csv and docs/data.md
    python benchmarks/data_results.py --print  # also print the Markdown rows
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "results" / "runs"
CSV_PATH = ROOT / "results" / "data.csv"
DOCS_PATH = ROOT / "docs" / "data.md"
# The Markdown table in docs/data.md sits between these two lines.
TABLE_BEGIN = "<!-- results table: written by benchmarks/data_results.py -->"
TABLE_END = "<!-- end of results table -->"
RUN_FILES = ("config.json", "metrics.json", "history.csv")

# Where this project's machine kept the run directories (model.keras and logs stay there).
PREVIOUS = Path("/work/tmp-data")  # the session of 2026-11-27
RUNS = Path("/work/runs")  # the session of 2026-11-28
H200 = "one NVIDIA H200 shared by 12 concurrent runs, JAX 0.11.2"
CPU = "2 shared CPU cores (AMD EPYC, no GPU)"


@dataclass(frozen=True)
class Row:
    """One results row: what ran, where its seeds' run directories are, on what machine."""

    model: str
    dataset: str
    recipe: str
    command: str  # with S for the seed
    runs: tuple[Path, ...]
    machine: str
    load: str = ""  # instead of the RUN.load files (e.g. a GPU shared by concurrent runs)
    # The `zoo train --preset` that reproduces the row (recipes/presets.py); a test checks it
    # expands to ``command``.
    preset: str = ""


def seeds(folder: Path, prefix: str, numbers=(0, 1, 2)) -> tuple[Path, ...]:
    return tuple(folder / f"{prefix}{seed}" for seed in numbers)


LENET_RECIPE = ("--recipe augment:rotation=0.03,brightness=0,contrast=0 --recipe weight-decay "
                "--recipe schedule:kind=cosine")
COSINE_15 = ("zoo train lenet5 --dataset mnist --epochs 15 --batch-size 64 "
             "--recipe schedule:kind=cosine --seed S")
ROWS = (
    Row("lenet5", "mnist", "cosine schedule", COSINE_15,
        seeds(PREVIOUS / "gpu1/runs", "lenet5-mnist-s"), H200, "12 runs at once",
        preset="lenet5-mnist-cosine"),
    Row("lenet5", "mnist", "cosine schedule", COSINE_15,
        seeds(PREVIOUS / "runs", "lenet5-mnist-s", [0]), CPU, preset="lenet5-mnist-cosine"),
    Row("lenet5", "mnist", "weight decay 5e-4 + cosine schedule",
        "zoo train lenet5 --dataset mnist --epochs 15 --batch-size 64 --recipe weight-decay "
        "--recipe schedule:kind=cosine --seed S", seeds(PREVIOUS / "runs", "lenet5-wd-mnist-s"),
        CPU, preset="lenet5-mnist-weight-decay"),
    Row("lenet5", "mnist", "augment (no intensity) + weight decay 5e-4 + cosine schedule",
        f"zoo train lenet5 --dataset mnist --epochs 20 --batch-size 64 {LENET_RECIPE} --seed S",
        seeds(RUNS, "data13-lenet5-mnist-s"), CPU, preset="lenet5-mnist"),
    Row("lenet5_modern", "mnist", "augment (no intensity) + weight decay 5e-4 + cosine schedule",
        f"zoo train lenet5_modern --dataset mnist --epochs 20 --batch-size 64 {LENET_RECIPE} "
        "--seed S", seeds(RUNS, "data13-lenet5_modern-mnist-s"), CPU,
        preset="lenet5_modern-mnist"),
    Row("lenet5_modern", "mnist",
        "augment (no intensity) + batch norm + weight decay 5e-4 + cosine schedule",
        "zoo train lenet5_modern --dataset mnist --epochs 20 --batch-size 64 "
        "--recipe augment:rotation=0.03,brightness=0,contrast=0 --recipe batchnorm "
        "--recipe weight-decay --recipe schedule:kind=cosine --seed S",
        seeds(RUNS, "data13-lenet5_modern-bn-mnist-s", [0]), CPU,
        preset="lenet5_modern-mnist-batchnorm"),
    Row("lenet5", "fashion_mnist", "cosine schedule",
        "zoo train lenet5 --dataset fashion_mnist --epochs 15 --batch-size 64 "
        "--recipe schedule:kind=cosine --seed S",
        (PREVIOUS / "runs/lenet5-fashion-s0", *seeds(RUNS, "data13-lenet5-fashion-s", [1, 2])),
        CPU, preset="lenet5-fashion_mnist"),
    # The search example's default and best configurations, retrained with fresh seeds
    # (docs/tuning.md): 4 % of the training split, as in the search.
    Row("lenet5", "fashion_mnist", "4 % of the training split (2,200 images), no recipe",
        "zoo train lenet5 --dataset fashion_mnist --train-fraction 0.04 --epochs 10 --seed S",
        seeds(RUNS, "data13-tune-default-fashion-s", [1, 2, 3]), CPU,
        preset="lenet5-fashion_mnist-4pct"),
    Row("lenet5", "fashion_mnist",
        "searched: filters 32,16, kernels 5,3; 4 % of the training split, no recipe",
        "zoo train lenet5 --dataset fashion_mnist --train-fraction 0.04 --epochs 10 "
        "--set filters=32,16 --set kernel_sizes=5,3 --seed S",
        seeds(RUNS, "data13-tune-best-fashion-s", [1, 2, 3]), CPU,
        preset="lenet5-fashion_mnist-4pct-searched"),
    Row("vgg_small", "fashion_mnist", "batch norm + augment (flip, no rotation) + cosine schedule",
        "zoo train vgg_small --dataset fashion_mnist --input-shape 32,32,1 --epochs 20 "
        "--batch-size 128 --recipe batchnorm --recipe augment:flip=horizontal,fill=constant,"
        "rotation=0.0 --recipe schedule:kind=cosine --seed S",
        tuple(RUNS / f"vgg_small-fashion-s{seed}" for seed in range(3)), CPU,
        preset="vgg_small-fashion_mnist"),
    # The same run in mixed bfloat16, which this CPU (AVX512_BF16) computes 1.7x faster
    # (docs/benchmarks.md): does the accuracy hold?
    Row("vgg_small", "fashion_mnist",
        "batch norm + augment (flip, no rotation) + cosine schedule; mixed bfloat16",
        "zoo train vgg_small --dataset fashion_mnist --input-shape 32,32,1 --epochs 20 "
        "--batch-size 128 --recipe batchnorm --recipe augment:flip=horizontal,fill=constant,"
        "rotation=0.0 --recipe schedule:kind=cosine --dtype-policy mixed_bfloat16 --seed S",
        seeds(RUNS, "vgg_small-fashion-bf16-s", [0]), CPU,
        preset="vgg_small-fashion_mnist-bfloat16"),
)


def command_settings(command: str) -> dict:
    """The settings of a `zoo train` command that config.json records, to check runs against."""
    words = shlex.split(command)
    settings = {"model": words[2], "recipes": []}
    for option, value in zip(words, words[1:]):
        if option == "--recipe":
            settings["recipes"].append(value.split(":")[0])
        elif option in ("--dataset", "--epochs", "--batch-size", "--train-fraction",
                        "--dtype-policy"):
            key = option[2:].replace("-", "_")
            settings[key] = {"dataset": str, "train_fraction": float,
                             "dtype_policy": str}.get(key, int)(value)
        elif option == "--set":
            name, _, text = value.partition("=")
            settings.setdefault("hparams", {})[name] = [int(v) for v in text.split(",")]
    settings["recipes"].sort()
    settings.setdefault("batch_size", 32)  # zoo train's defaults
    settings.setdefault("train_fraction", 1.0)
    settings.setdefault("hparams", {})
    settings.setdefault("dtype_policy", "float32")
    return settings


# results/runs/ names a run by where and when it ran, then by its own folder name.
ARCHIVE_PREFIX = {PREVIOUS / "gpu1/runs": "h200-20261127", PREVIOUS / "runs": "cpu-20261127",
                  RUNS: "cpu-20261128"}


def archive_name(run: Path) -> str:
    return f"{ARCHIVE_PREFIX[run.parent]}-{run.name}"


def collect(row: Row) -> list[Path]:
    """Copy the small files of the row's finished runs into results/runs/; their folders there."""
    kept = []
    for run in row.runs:
        target = ARCHIVE / archive_name(run)
        if (run / "metrics.json").exists():
            target.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:
                shutil.copyfile(run / name, target / name)
            load = run.parent / f"{run.name}.load"
            if load.exists():
                shutil.copyfile(load, target / "load.txt")
        if (target / "metrics.json").exists():
            kept.append(target)
    return kept


def check_run(row: Row, run: Path, config: dict) -> None:
    expected = command_settings(row.command)
    found = {key: config[key] for key in ("model", "dataset", "epochs", "batch_size",
                                          "train_fraction")}
    found["recipes"] = sorted(r.split(":")[0] for r in config["recipes"])
    found["dtype_policy"] = config.get("dtype_policy") or "float32"  # None: before the option
    # --set values (integer lists here) must be among the run's builder arguments.
    found["hparams"] = {name: config["hparams"].get(name) for name in expected["hparams"]}
    if found != {key: expected.get(key) for key in found}:
        raise SystemExit(f"{run}: its config.json ({found}) is not what the row's command "
                         f"runs ({expected}); fix ROWS")


def load_text(runs: list[Path]) -> str:
    loads = []
    for run in runs:
        load = run / "load.txt"
        if load.exists():
            loads += [float(line.split("load average:")[1].split(",")[0])
                      for line in load.read_text().splitlines() if "load average:" in line]
    if not loads:
        return "load not recorded"
    return (f"load {min(loads):.1f}-{max(loads):.1f} (1-minute averages at the runs' starts "
            f"and ends)")


def params_and_macs(config: dict) -> tuple[int, int]:
    """Parameters and MACs per image of the model as the run built it."""
    from zoo.core.layer_table import summarize
    from zoo.core.registry import build

    hparams = dict(config["hparams"])
    hparams["input_shape"] = tuple(hparams["input_shape"])
    summary = summarize(build(config["model"], **hparams))
    return summary.total_params, summary.total_macs


def checkpoint_val_accuracy(run: Path) -> float:
    """Validation accuracy of the epoch whose model was kept and tested (lowest val_loss); a
    resumed run's re-done epoch counts once, as zoo.core.runs.read_history reads it."""
    from zoo.core.runs import read_history

    history = read_history(run / "history.csv")
    return min(zip(history["val_loss"], history["val_accuracy"]))[1]


def build(row: Row, runs: list[Path]) -> dict:
    configs = [json.loads((run / "config.json").read_text()) for run in runs]
    metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
    for run, config in zip(runs, configs):
        check_run(row, run, config)
    accuracy = [100 * m["test_accuracy"] for m in metrics]
    validation = [100 * checkpoint_val_accuracy(run) for run in runs]
    params, macs = params_and_macs(configs[0])
    backend = {f"{c['backend']} backend, Keras {c['keras_version']}" for c in configs}
    return {
        "model": row.model, "dataset": row.dataset, "recipe": row.recipe,
        "epochs": metrics[0]["epochs"], "batch_size": configs[0]["batch_size"],
        "seeds": " ".join(str(c["seed"]) for c in configs),
        "test_top1_mean": f"{statistics.mean(accuracy):.2f}",
        "test_top1_std": f"{statistics.stdev(accuracy):.2f}" if len(accuracy) > 1 else "",
        "test_top1_per_seed": " ".join(f"{a:.2f}" for a in accuracy),
        # The 5,000-image validation slice of the training split, at the tested checkpoint:
        # what recipes are chosen on (the test split only reports).
        "val_top1_mean": f"{statistics.mean(validation):.2f}",
        "val_top1_per_seed": " ".join(f"{a:.2f}" for a in validation),
        "params": params, "macs": macs,
        "train_seconds": " ".join(f"{m['train_seconds']:.0f}" for m in metrics),
        "machine": f"{row.machine}; {', '.join(sorted(backend))}",
        "load": row.load or load_text(runs),
        "command": row.command,
        "preset": row.preset,
    }


def markdown_row(result: dict) -> str:
    top1 = result["test_top1_mean"]
    if result["test_top1_std"]:
        top1 += f" ± {result['test_top1_std']}"
    return (f"| `{result['model']}` | {result['dataset']} | {result['recipe']} | "
            f"{result['epochs']} | {top1} ({result['test_top1_per_seed'].replace(' ', ', ')}; "
            f"seeds {result['seeds'].replace(' ', ', ')}) | {result['val_top1_mean']} | "
            f"{result['train_seconds']} | "
            f"{result['machine']}; {result['load']} | "
            f"`zoo train --preset {result['preset']} --seed S` |")


def markdown_table(results: list[dict]) -> str:
    lines = ["| model | data set | recipe | epochs | test top-1 % (per seed) | val top-1 % "
             "| training s per run | machine | reproduce |", "|" + " --- |" * 9]
    return "\n".join([*lines, *(markdown_row(r) for r in results)])


def update_docs(table: str) -> None:
    text = DOCS_PATH.read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise SystemExit(f"{DOCS_PATH} lacks the table markers {TABLE_BEGIN!r} / {TABLE_END!r}")
    head, rest = text.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    DOCS_PATH.write_text(f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the Markdown table")
    args = parser.parse_args(argv)
    results = []
    for row in ROWS:
        runs = collect(row)
        if not runs:
            print(f"skipped (no finished run yet): {row.model} {row.dataset} {row.recipe}",
                  file=sys.stderr)
            continue
        results.append(build(row, runs))
    with CSV_PATH.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    table = markdown_table(results)
    update_docs(table)
    if args.print:
        print(table)
    print(f"wrote {CSV_PATH.relative_to(ROOT)} ({len(results)} rows) and the table in "
          f"{DOCS_PATH.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
