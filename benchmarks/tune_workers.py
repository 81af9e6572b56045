"""Trials per hour of a `zoo tune` search with N = 1, 2, 4, 8 worker processes on one machine.

The search (issue 16, item 3): vgg_small on Fashion-MNIST (32x32x1), feature maps per block
8...64 (non-decreasing) x 1 or 2 convs per block, keras-tuner random search with a fixed seed,
``--trials-per-worker`` x N trials (so every worker trains about the same number), each on
``--train-fraction`` of the training split for ``--epochs`` epochs, no retraining. Each N is
one `zoo tune ... --workers N` command in its own process (so each starts cold, as a user's
would), stopped with SIGINT at ``--timeout`` seconds (the trials finished by then are counted).
``--workers 0`` also times the same search without --workers (one process), for reference.

Writes one JSON document: the machine (backend, devices, TensorFlow installed or not, CPUs,
load before and after), the search, and per N: trials ended, trials per hour from the
command's start (a cold start: Python, the backend, the data, the workers) to the last trial's
end (``trials_per_hour``: one cold start shared by the N x trials-per-worker trials, so it
favours large N as a real search of that size would), trials per hour once running
(``steady_trials_per_hour``: the trials that ended after the first N did, over the seconds
from the N-th end to the last; the first round of N trials, which starts together, is left
out with the start-up), when each trial ended, the search's and the command's seconds, and
the speed-up over N = 1 for both rates.

    # on the GPU machine (JAX, no TensorFlow), about 4 minutes:
    KERAS_BACKEND=jax python benchmarks/tune_workers.py --workers 1 2 4 8 \\
        --fashion-idx DATA/fashion --json OUT/gpu-tune-workers.json
    # a tiny CPU check:
    python benchmarks/tune_workers.py --workers 1 2 --trials-per-worker 2 --epochs 1 \\
        --train-fraction 0.02 --timeout 300 --json /tmp/tune-workers-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The Python of the children, started as this one runs (`python -S` in the no-TensorFlow checks).
PYTHON = [sys.executable, *(["-S"] if sys.flags.no_site else [])]
SPACE = ["--space", "filters=8:64", "--space", "depths=1,2", "--only", "--increasing-filters"]


def search_args(workers: int, trials: int, args: argparse.Namespace, out: Path) -> list[str]:
    """The `zoo tune` command line of one measurement (``workers`` 0: no --workers)."""
    command = [*PYTHON, "-m", "zoo", "tune", "vgg_small", "--dataset", "fashion_mnist",
               "--input-shape", "32,32,1", "--train-fraction", str(args.train_fraction),
               "--algorithm", "random", "--max-trials", str(trials), "--epochs",
               str(args.epochs), "--batch-size", str(args.batch_size), *SPACE, "--seed", "0",
               "--no-retrain", "--out", str(out)]
    return command + (["--workers", str(workers)] if workers else [])


def child_environment() -> dict[str, str]:
    """This environment with the repository first on the children's PYTHONPATH."""
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *paths])}


def ended_trials(out: Path) -> list[tuple[float, str]]:
    """(time its trial.json was last written, status) of every trial that has ended."""
    ended = []
    for path in out.glob("tuner/trial_*/trial.json"):
        status = json.loads(path.read_text())["status"]
        if status != "RUNNING":
            ended.append((path.stat().st_mtime, status))
    return sorted(ended)


def measure(workers: int, args: argparse.Namespace, folder: Path) -> dict:
    """Run one search with ``workers`` worker processes (0: none) and time it."""
    trials = args.trials_per_worker * max(workers, 1)
    out = folder / f"workers-{workers}"
    command = search_args(workers, trials, args, out)
    env = child_environment()
    start = time.time()
    log = (folder / f"workers-{workers}.log").open("w")
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    try:
        process.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        process.send_signal(signal.SIGINT)  # stops its workers; finished trials stay
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    wall = time.time() - start
    log.close()
    ended = ended_trials(out)
    completed = sum(status == "COMPLETED" for _, status in ended)
    summary_file = out / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    search_seconds = summary.get("search_seconds")
    row = {"workers": workers, "trials_planned": trials, "trials_ended": len(ended),
           "completed": completed, "timed_out": timed_out, "exit_status": process.returncode,
           "command_seconds": round(wall, 1),
           "search_seconds": round(search_seconds, 1) if search_seconds else None,
           "best_val_accuracy": summary.get("best_value"),
           "distribution": summary.get("distribution")}
    if ended:  # from the command's start (a cold start) to the last trial's end, for every N
        row["seconds_to_last_trial"] = round(ended[-1][0] - start, 1)
        row["trials_per_hour"] = round(3600 * len(ended) / (ended[-1][0] - start), 1)
    else:
        row["trials_per_hour"] = 0.0
    row["trial_ends"] = [round(when - start, 1) for when, _ in ended]  # seconds after start
    first = max(workers, 1)  # the first round: all N workers start their first trial at once
    if len(ended) > first:  # trials ended after the first N did, per second since: steady state
        span = ended[-1][0] - ended[first - 1][0]
        row["steady_trials_per_hour"] = (round(3600 * (len(ended) - first) / span, 1)
                                         if span > 0 else None)
    tail = (folder / f"workers-{workers}.log").read_text().strip().splitlines()[-3:]
    row["last_lines"] = tail
    return row


def machine() -> dict:
    """Backend, devices and load of this machine (imports the backend in a child process)."""
    probe = ("import json, keras, importlib.util as u; b = keras.backend.backend(); d = []\n"
             "if b == 'jax':\n import jax; d = [str(x) for x in jax.devices()]\n"
             "print(json.dumps({'backend': b, 'keras': keras.__version__, 'devices': d,"
             " 'tensorflow_installed': u.find_spec('tensorflow') is not None}))")
    done = subprocess.run([*PYTHON, "-c", probe], capture_output=True, text=True,
                          env=child_environment())
    facts = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {
        "probe_error": done.stderr[-500:]}
    facts.update({"host": platform.node(), "cpus": len(os.sched_getaffinity(0))
                  if hasattr(os, "sched_getaffinity") else os.cpu_count()})
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20)
        facts["gpus"] = gpus.stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        facts["gpus"] = []
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8],
                        help="Worker counts to measure (0: the search without --workers).")
    parser.add_argument("--trials-per-worker", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-fraction", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=55.0,
                        help="Seconds each N may run before it is stopped (SIGINT).")
    parser.add_argument("--fashion-idx", default=None,
                        help="Folder with Fashion-MNIST's official IDX files, imported into "
                             "the zoo's cache first if the set is not ready there.")
    parser.add_argument("--json", required=True, help="Where to write the results.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from zoo.core.runs import write_json_atomic
    from zoo.data.cache import is_ready

    if not is_ready("fashion_mnist"):
        if args.fashion_idx is None:
            sys.exit("Fashion-MNIST is not imported here: pass --fashion-idx DIR (its four "
                     "official IDX files) or run `zoo data import fashion_mnist DIR` first")
        from zoo.data.imports import import_dataset

        import_dataset("fashion_mnist", args.fashion_idx)
    report = {"machine": machine(), "load_before": os.getloadavg(),
              "search": {"model": "vgg_small", "dataset": "fashion_mnist",
                         "space": " ".join(SPACE), "algorithm": "random", "seed": 0,
                         "epochs": args.epochs, "train_fraction": args.train_fraction,
                         "batch_size": args.batch_size,
                         "trials_per_worker": args.trials_per_worker,
                         "timeout_seconds": args.timeout},
              "command": " ".join([Path(PYTHON[0]).name, *PYTHON[1:], *sys.argv]),
              "rows": []}
    with tempfile.TemporaryDirectory() as folder:
        for workers in args.workers:
            row = measure(workers, args, Path(folder))
            report["rows"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "last_lines"}),
                  file=sys.stderr, flush=True)
    report["load_after"] = os.getloadavg()
    for rate in ("trials_per_hour", "steady_trials_per_hour"):
        base = next((r.get(rate) for r in report["rows"] if r["workers"] == 1), None)
        for row in report["rows"]:
            value = row.get(rate)
            row[f"{rate}_over_1"] = round(value / base, 2) if base and value else None
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
