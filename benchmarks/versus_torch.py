"""The zoo against its PyTorch peer, fed the same way, on one device (a GPU):

    python benchmarks/versus_torch.py lenet5 vgg_small --json benchmarks/results/versus.json

For every model x dtype policy x feeding (``peer_jobs.FEEDINGS``) this measures training
images/s of the zoo (``zoo_timing``: its own input path from uint8 host arrays, or the data
set resident on the device) and of the same architecture in plain PyTorch (``torch_peer``: a
DataLoader over pinned uint8 tensors with non-blocking copies, or the data set on the
device), at the same batch size and steps, and turns both into training TFLOP/s and a
fraction of the bf16 dense matmul peak measured in the same run.

Each side runs in a process of its own, the zoo first, then PyTorch: this process starts no
framework, so each side has the device's memory and the cores to itself (JAX keeps what it
reserved until its process ends). The zoo's side picks each model's batch: the requested one,
or the largest of ``batch_candidates`` below it that fits, largest first; PyTorch is then
given the zoo's batch and steps (and steps down the same list only if that does not fit,
which the report shows).

FLOPs convention: training FLOPs per image = 3 x 2 x forward MACs (a multiply-accumulate is 2
FLOPs; the backward pass costs about twice the forward), with MACs from the zoo's layer
table, the same for both sides.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import click

if not __package__:  # run as a script: the checkout, not benchmarks/, holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.peer_jobs import (
    FEEDINGS,
    PEER_POLICIES,
    batch_candidates,
    child_command,
    child_env,
    read_results,
    registry_macs,
)
from benchmarks.script_command import ScriptCommand
from benchmarks.torch_models import TORCH_PEERS
from benchmarks.torch_peer import has_torch
from benchmarks.versus_report import default_versus_path, format_versus_markdown
from benchmarks.zoo_timing import ACCELERATOR_STEPS
from zoo.bench.report import write_report
from zoo.bench.run import BenchError, check_counts
from zoo.bench.timing import spread
from zoo.cli.bench import BACKENDS
from zoo.cli.options import input_shape_option, parse_shape
from zoo.core.registry import get_model_info, list_models
from zoo.training.dtype_policy import DTYPE_POLICIES
from zoo.training.interrupts import sigterm_as_interrupt

FLOPS_CONVENTION = ("training FLOPs per image = 3 x 2 x forward MACs (2 FLOPs per "
                    "multiply-accumulate; backward ~ 2 x forward), MACs from the zoo's layer "
                    "table")


@dataclass
class VersusSettings:
    """What benchmarks/versus_torch.py measures."""

    dtype_policies: tuple[str, ...] = PEER_POLICIES
    feedings: tuple[str, ...] = FEEDINGS
    # The largest batch tried; a model that does not fit steps down batch_candidates.
    batch_size: int = 256
    steps: int | None = None  # per timed repeat; None: sized by model cost and device
    repeats: int = 3
    input_shape: tuple[int, int, int] | None = None  # None: each model's own
    peak_size: int | None = None  # matmul side; None: 8192 on an accelerator, 1024 on a CPU
    seed: int = 0
    loader_workers: int | None = None  # PyTorch DataLoader workers; None: 4 with CUDA, else 0
    backend: str | None = None  # the zoo side's KERAS_BACKEND; None: this environment's
    note: str = ""

    def check(self, names: list[str]) -> None:
        """Raise BenchError for settings or models that cannot be compared."""
        for policy in self.dtype_policies:
            if policy not in PEER_POLICIES:
                raise BenchError(f"the PyTorch comparison takes dtype policies "
                                 f"{' and '.join(PEER_POLICIES)} (PyTorch: float32, autocast "
                                 f"bfloat16), got {policy!r}")
        for feeding in self.feedings:
            if feeding not in FEEDINGS:
                raise BenchError(f"feeding must be one of {', '.join(FEEDINGS)}, "
                                 f"got {feeding!r}")
        if not self.dtype_policies or not self.feedings:
            raise BenchError("give at least one dtype policy and one feeding")
        check_counts(self, ("batch_size", "steps", "peak_size"))
        for name in names:
            get_model_info(name)  # unknown names: close matches
            if name not in TORCH_PEERS:
                raise BenchError(f"{name} has no PyTorch peer; write one in "
                                 f"benchmarks/torch_models.py or leave it out")


def _zoo_jobs(names: list[str], settings: VersusSettings) -> list[dict[str, Any]]:
    jobs = []
    for name in names:
        info = get_model_info(name)
        jobs.append({"model": name, "input_shape": list(settings.input_shape or info.input_shape),
                     "num_classes": info.num_classes, "steps": settings.steps,
                     "batch_sizes": batch_candidates(settings.batch_size),
                     "dtype_policies": list(settings.dtype_policies),
                     "feedings": list(settings.feedings)})
    return jobs


def _torch_jobs(zoo_rows: list[dict[str, Any]], jobs: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """One PyTorch job per zoo configuration, at the zoo's batch and steps; where the zoo's
    side failed, the requested batch sizes and steps."""
    done = {(r["model"], r["dtype_policy"], r["feeding"]): r for r in zoo_rows}
    torch_jobs = []
    for job in jobs:
        for policy in job["dtype_policies"]:
            for feeding in job["feedings"]:
                zoo = done.get((job["model"], policy, feeding), {})
                batch = zoo.get("batch_size")
                sizes = ([b for b in job["batch_sizes"] if b <= batch] if batch
                         else job["batch_sizes"])
                # Without the zoo's steps: the fewest the zoo's side times on a GPU.
                torch_jobs.append({**job, "dtype_policies": [policy], "feedings": [feeding],
                                   "batch_sizes": sizes,
                                   "steps": zoo.get("steps") or job["steps"]
                                   or ACCELERATOR_STEPS[0]})
    return torch_jobs


# The module each side runs as (`python -m ...`), with its leading arguments.
SIDES = {"zoo": ("benchmarks.zoo_timing",), "torch": ("benchmarks.torch_peer", "jobs")}


def _run_side(side: str, spec: dict[str, Any], work: Path, env: dict[str, str]
              ) -> tuple[list[dict[str, Any]], str | None]:
    """(result lines, failure or None) of one side's process.

    Interrupted (Ctrl-C, or SIGTERM turned into KeyboardInterrupt by ``compare_with_torch``),
    the side's process is stopped too before the interruption goes on.
    """
    spec_file = work / f"{side}-spec.json"
    spec_file.write_text(json.dumps(spec))
    module, *args = SIDES[side]
    process = subprocess.Popen(child_command(module, *args, str(spec_file),
                                             str(_results_file(work, side))),
                               env=child_env(env))
    try:
        status = process.wait()
    except BaseException:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    lines = read_results(_results_file(work, side))
    failure = None
    if status != 0 or not any(line["kind"] == "done" for line in lines):
        failure = f"the {side} side exited with status {status} before finishing"
    return lines, failure


def _results_file(work: Path, side: str) -> Path:
    return work / f"{side}-results.jsonl"


def _side_summary(lines: list[dict[str, Any]], failures: list[str]) -> dict[str, Any]:
    facts = next((line for line in lines if line["kind"] == "facts"), {})
    done = [line["tensorflow_loaded"] for line in lines if line["kind"] == "done"]
    peaks = {line["dtype"]: {k: v for k, v in line.items() if k not in ("kind", "side")}
             for line in lines if line["kind"] == "peak"}
    return {"facts": {k: v for k, v in facts.items() if k not in ("kind", "side")},
            "tensorflow_loaded": any(done) if done else None, "matmul_peak": peaks,
            "failure": "; ".join(failures) or None}


def _measured(row: dict[str, Any] | None, repeats: int, flops: float, peak_gflops: float
              ) -> dict[str, Any] | None:
    """Images/s (the warm-up epoch left out), TFLOP/s and fraction of peak of one side."""
    if row is None:
        return None
    if "error" in row:
        return {"error": row["error"]}
    images = row["batch_size"] * row["steps"]
    rate = spread([images / s for s in row["wall"][1:1 + repeats]])
    return {"batch_size": row["batch_size"], "steps": row["steps"], "images_per_s": rate,
            "tflops": rate["median"] * flops / 1e12,
            "fraction_of_peak": rate["median"] * flops / (peak_gflops * 1e9),
            "out_of_memory": row.get("out_of_memory", []), "wall": row["wall"],
            **({"data_device": row["data_device"]} if "data_device" in row else {})}


def combine(zoo_lines: list[dict[str, Any]], torch_lines: list[dict[str, Any]],
            settings: VersusSettings) -> dict[str, Any]:
    """The report's peak and rows from both sides' result lines."""
    peaks = [(line["peak_gflops"], line) for line in zoo_lines + torch_lines
             if line["kind"] == "peak" and line["dtype"] == "bfloat16"]
    best = max(peaks, key=lambda p: p[0])[1] if peaks else None
    peak_gflops = best["peak_gflops"] if best else float("nan")
    def key(row):
        return row["model"], row["dtype_policy"], row["feeding"]

    zoo_rows = {key(r): r for r in zoo_lines if r["kind"] == "row"}
    torch_rows = {key(r): r for r in torch_lines if r["kind"] == "row"}
    rows = []
    for model, policy, feeding in [*zoo_rows, *(k for k in torch_rows if k not in zoo_rows)]:
        zoo, peer = zoo_rows.get((model, policy, feeding)), torch_rows.get((model, policy, feeding))
        macs = (zoo or {}).get("macs") or registry_macs(model, (zoo or peer)["input_shape"])
        flops = 6 * macs if macs else float("nan")
        ours = _measured(zoo, settings.repeats, flops, peak_gflops)
        theirs = _measured(peer, settings.repeats, flops, peak_gflops)
        row = {"model": model, "input_shape": (zoo or peer)["input_shape"],
               "dtype_policy": policy, "feeding": feeding, "macs": macs,
               "train_flops_per_image": flops, "zoo": ours, "torch": theirs,
               "ratio": None, "min_repeat_ratio": None, "same_batch": None}
        if ours and theirs and "error" not in ours and "error" not in theirs:
            row["ratio"] = ours["images_per_s"]["median"] / theirs["images_per_s"]["median"]
            row["min_repeat_ratio"] = ours["images_per_s"]["min"] / theirs["images_per_s"]["max"]
            row["same_batch"] = (ours["batch_size"], ours["steps"]) == (theirs["batch_size"],
                                                                        theirs["steps"])
        rows.append(row)
    return {"peak": None if best is None else {
                "gflops": peak_gflops, "dtype": "bfloat16", "size": best["size"],
                "library": best.get("library")},
            "rows": rows}


def compare_with_torch(names: list[str], settings: VersusSettings,
                       progress: Callable[[str], None] = lambda line: None,
                       checkpoint: Callable[[dict[str, Any]], None] = lambda report: None
                       ) -> dict[str, Any]:
    """Time the zoo and its PyTorch peer on every model of ``names`` x dtype policy x
    feeding, each side in a process of its own; return the report.

    Args:
        names: registered models with a PyTorch peer.
        settings: what to measure.
        progress: called with one line per finished step.
        checkpoint: called with the report so far after each side of each model, and when
            Ctrl-C or SIGTERM stops the run (write it: a kill keeps what was measured).
    """
    settings.check(names)
    if not has_torch():
        raise BenchError("the PyTorch comparison needs PyTorch: pip install torch")
    env = dict(os.environ)
    if settings.backend:
        env["KERAS_BACKEND"] = settings.backend
    jobs = _zoo_jobs(names, settings)
    common = {"seed": settings.seed, "repeats": settings.repeats,
              "peak_size": settings.peak_size, "loader_workers": settings.loader_workers}
    lines: dict[str, list[dict[str, Any]]] = {"zoo": [], "torch": []}
    failures: dict[str, list[str]] = {"zoo": [], "torch": []}

    def report() -> dict[str, Any]:
        return _report(settings, lines, failures)

    # A kill (timeout's SIGTERM) must not lose what was measured: it becomes a
    # KeyboardInterrupt, and the report so far is written before it goes on.
    with sigterm_as_interrupt():
        with tempfile.TemporaryDirectory(prefix="zoo-versus-") as tmp:
            for i, job in enumerate(jobs):
                # One model per pair of processes: each model starts with the device's memory
                # free, and a time limit cuts the run between models, not before PyTorch's
                # side of every model. The peaks are measured by the first pair.
                spec = {**common, "measure_peak": i == 0, "jobs": [job]}
                work = Path(tmp) / str(i)
                work.mkdir()
                for side in ("zoo", "torch"):
                    if side == "torch":
                        zoo_rows = [r for r in lines["zoo"] if r["kind"] == "row"
                                    and r["model"] == job["model"]]
                        spec = {**spec, "jobs": _torch_jobs(zoo_rows, [job])}
                    progress(f"{job['model']}: {'zoo' if side == 'zoo' else 'PyTorch'} side")
                    try:
                        side_lines, failure = _run_side(side, spec, work, env)
                    except KeyboardInterrupt:
                        lines[side] += read_results(_results_file(work, side))
                        failures[side].append(f"{job['model']}: interrupted")
                        checkpoint(report())
                        raise
                    lines[side] += side_lines
                    failures[side] += [f"{job['model']}: {failure}"] if failure else []
                    checkpoint(report())
    return report()


def _report(settings: VersusSettings, lines: dict[str, list[dict[str, Any]]],
            failures: dict[str, list[str]]) -> dict[str, Any]:
    zoo, torch = (_side_summary(lines[side], failures[side]) for side in ("zoo", "torch"))
    devices = zoo["facts"].get("devices") or []
    return {"kind": "versus_torch", "settings": asdict(settings),
            "device": torch["facts"].get("device") or ", ".join(devices) or "?",
            "zoo": zoo, "torch": torch, "flops_convention": FLOPS_CONVENTION,
            **combine(lines["zoo"], lines["torch"], settings),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def format_versus_row(row: dict[str, Any]) -> str:
    """One line per configuration for the terminal."""
    def side(result):
        if result is None:
            return "not run"
        if "error" in result:
            return result["error"]
        rate = result["images_per_s"]["median"]
        return (f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}") + (
            f" img/s (batch {result['batch_size']}, "
            f"{100 * result['fraction_of_peak']:.1f}% of peak)")

    ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}x"
    return (f"{row['model']} {row['dtype_policy']} {row['feeding']}: zoo {side(row['zoo'])}, "
            f"PyTorch {side(row['torch'])}, zoo/PyTorch {ratio}")


@click.command(cls=ScriptCommand)
@click.argument("names", nargs=-1)
@click.option("--dtype-policy", "dtype_policies", multiple=True,
              type=click.Choice(DTYPE_POLICIES),
              help="Repeatable: float32 and/or mixed_bfloat16 (default both).")
@click.option("--feeding", "feedings", multiple=True, type=click.Choice(FEEDINGS),
              help="Repeatable: host (each framework's own input path from uint8 host arrays) "
                   "and/or device (data set resident on the device, the upper bound); default "
                   "both.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="The largest batch tried; smaller ones where it does not fit.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps per timed repeat (default: by model cost and device).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed repeats (epochs) after the warm-up epoch.")
@input_shape_option
@click.option("--peak-size", type=click.IntRange(min=1), default=None,
              help="Side of the bf16 matmul that measures the peak (default 8192 on a GPU, "
                   "1024 on a CPU).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="The zoo side's Keras backend (default: the environment's).")
@click.option("--json", "json_path", default=None, metavar="OUT",
              help="JSON report path (Markdown beside it); default benchmarks/results/.")
@click.option("--note", default="", help="A remark stored with the results (e.g. load).")
def main(names, dtype_policies, feedings, batch_size, steps, repeats, input_shape, peak_size,
         seed, backend, json_path, note) -> None:
    """Time the zoo against its PyTorch peer for models NAMES (default: all registered), every
    model x --dtype-policy x --feeding, each framework in its own process; write JSON and
    Markdown, after each process and when stopped."""
    settings = VersusSettings(
        dtype_policies=dtype_policies or PEER_POLICIES, feedings=feedings or FEEDINGS,
        batch_size=batch_size, steps=steps, repeats=repeats,
        input_shape=parse_shape(input_shape), peak_size=peak_size, seed=seed,
        backend=backend, note=note)
    command = shlex.join(["python", "benchmarks/versus_torch.py", *sys.argv[1:]])
    path = json_path

    def write(report):  # after each side's process and at the end, to the same files
        nonlocal path
        path = path or default_versus_path(report)
        return write_report({**report, "command": command}, path, format_versus_markdown)

    report = compare_with_torch(list(names) or list_models(), settings, progress=click.echo,
                                checkpoint=write)
    json_out, md_out = write(report)
    for row in report["rows"]:
        click.echo(format_versus_row(row))
    click.echo(f"results: {json_out} and {md_out}")
    failed = [side for side in ("zoo", "torch") if report[side]["failure"]]
    errors = [row for row in report["rows"]
              if any(row[side] and "error" in row[side] for side in ("zoo", "torch"))]
    if failed or errors:
        raise click.ClickException(
            f"{len(errors)} configuration(s) failed"
            + (f" and {' and '.join(report[s]['failure'] for s in failed)}" if failed else "")
            + f"; the results above and in {json_out} say which")


if __name__ == "__main__":
    main()
