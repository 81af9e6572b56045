"""`zoo tune --workers N`: keras-tuner's chief here and N worker processes on this machine."""

from __future__ import annotations

import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuning.sharing import GPU_MEMORY_SHARE, share_machine, worker_environment
from tuning.workers import MAX_WORKER_CRASHES, WorkerPool

REPO = Path(__file__).resolve().parents[1]


def test_cpus_and_gpu_memory_are_split_between_the_workers():
    two = share_machine(2, [0, 1], [])
    assert [s.cpus for s in two] == [(0,), (1,)] and two[0].gpu is None
    assert [s.cpus for s in share_machine(3, list(range(8)), [])] == [
        (0, 1), (2, 3, 4), (5, 6, 7)]
    assert [s.cpus for s in share_machine(4, [0, 1], [])] == [(0,), (1,), (0,), (1,)]
    one_gpu = share_machine(4, list(range(16)), ["0"])
    assert {s.gpu for s in one_gpu} == {"0"}
    assert all(s.gpu_memory_fraction == pytest.approx(GPU_MEMORY_SHARE / 4) for s in one_gpu)
    two_gpus = share_machine(3, list(range(16)), ["2", "5"])  # CUDA_VISIBLE_DEVICES=2,5
    assert [s.gpu for s in two_gpus] == ["2", "5", "2"]
    assert [s.gpu_memory_fraction for s in two_gpus] == pytest.approx(
        [GPU_MEMORY_SHARE / 2, GPU_MEMORY_SHARE, GPU_MEMORY_SHARE / 2])


def test_each_worker_environment_holds_its_share_and_no_chief_role():
    share = share_machine(2, [0, 1, 2, 3], ["0"])[1]
    env = worker_environment(share, {"PATH": "/bin", "KERASTUNER_TUNER_ID": "chief",
                                     "KERASTUNER_ORACLE_IP": "127.0.0.1",
                                     "XLA_CLIENT_MEM_FRACTION": "0.75"})
    assert "XLA_CLIENT_MEM_FRACTION" not in env  # JAX refuses both names at once
    assert env["PATH"] == "/bin" and "KERASTUNER_TUNER_ID" not in env
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "2"
    assert env["ZOO_TUNE_WORKER_CPUS"] == "2,3"
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert float(env["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(GPU_MEMORY_SHARE / 2)
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    cpu_only = worker_environment(share_machine(2, [0, 1], [])[0], {})
    assert "CUDA_VISIBLE_DEVICES" not in cpu_only and cpu_only["OMP_NUM_THREADS"] == "1"


@pytest.fixture
def chief_oracle(tmp_path, monkeypatch):
    """A zoo oracle as a chief holds it, with trial 0 handed to worker-1."""
    import keras_tuner

    from tuning import tuners
    from tuning.space import derive_space

    monkeypatch.setattr(tuners, "free_memory", lambda **kwargs: None)
    space = derive_space("lenet5", {"learning_rate": "0.001,0.003,0.01,0.03"}, only=True)
    oracle = tuners.ORACLES["random"](objective=keras_tuner.Objective("val_accuracy", "max"),
                                      max_trials=4, seed=1, space=space)
    tuners.ZooTuner(oracle=oracle, hypermodel=tuners.ZooHyperModel(space, None, None, None),
                    echo=lambda line: None, directory=str(tmp_path), project_name="tuner")
    oracle.serving_workers = True
    trial = oracle.create_trial("worker-1")
    assert trial.status == "RUNNING"
    return oracle


def _pool(tmp_path, exits: list[int], lines: list[str]) -> WorkerPool:
    """Workers that say something and exit with the next status of ``exits`` each."""
    codes = iter(exits)

    def command(tuner_id: str) -> list[str]:
        code = next(codes)
        return [sys.executable, "-c",
                f"import sys; print('simulated error in {tuner_id}'); sys.exit({code})"]

    return WorkerPool(share_machine(1, [0], []), tmp_path / "logs", command, lines.append)


def test_a_crashed_worker_is_one_line_its_trial_failed_and_it_is_replaced(tmp_path,
                                                                          chief_oracle):
    lines: list[str] = []
    pool = _pool(tmp_path, [3, 0], lines)
    pool.start()
    pool.supervise(chief_oracle)  # returns: no hang on the crashed worker's trial
    trial = chief_oracle.trials["0"]
    assert trial.status == "FAILED" and "exit status 3" in trial.message
    assert "simulated error in worker-1" in trial.message
    assert not chief_oracle.ongoing_trials and "worker-1" not in chief_oracle.tuner_ids
    assert len(lines) == 1 and "worker worker-1" in lines[0] and "trial 0" in lines[0]
    assert "worker-2 takes its place" in lines[0]
    assert [w.tuner_id for w in pool.started] == ["worker-1", "worker-2"]


def test_a_worker_still_waiting_when_the_chief_stops_serving_is_stopped(tmp_path):
    """keras-tuner's chief stops serving once every worker that asked for a trial has been
    told the search is over; one that had not asked yet would wait an hour for an answer (a
    finished Hyperband search run again with --workers 2 hung so). It holds no trial: the pool
    stops it, and it is not a crash."""
    import threading

    from tuning.workers import ChiefServer

    lines: list[str] = []
    pool = WorkerPool(share_machine(1, [0], []), tmp_path / "logs",
                      lambda tuner_id: [sys.executable, "-c", "import time; time.sleep(600)"],
                      lines.append)
    pool.start()
    served = threading.Thread(target=lambda: None)  # the chief's loop, returned
    served.start()
    served.join()
    start = time.monotonic()
    pool.supervise(object(), ChiefServer(served, []))
    assert time.monotonic() - start < 30
    assert not pool.running and pool.crashes == 0 and not lines
    assert pool.started[0].process.poll() is not None


def test_workers_that_keep_crashing_stop_the_search(tmp_path, chief_oracle):
    lines: list[str] = []
    pool = _pool(tmp_path, [1] * (MAX_WORKER_CRASHES + 1), lines)
    pool.start()
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=f"{MAX_WORKER_CRASHES} worker processes crashed"):
        pool.supervise(chief_oracle)
    assert time.monotonic() - start < 60
    assert len(pool.started) == MAX_WORKER_CRASHES and len(lines) == MAX_WORKER_CRASHES


@pytest.mark.filterwarnings("ignore:All-NaN")  # keras-tuner scores the NaN, as in a search
def test_the_chief_works_out_a_workers_refusal_once_outside_its_lock(tmp_path, chief_oracle,
                                                                     monkeypatch):
    """keras-tuner's protocol drops a worker's message: the chief explains a refused trial
    once, before it takes the oracle's lock (workers would wait on a model being built), and
    keeps the reason as the trial's message (in trial.json), which the tables read back.
    Trials that trained or crashed are not explained."""
    from keras_tuner.engine.trial import Trial, TrialStatus
    from keras_tuner.src.engine.oracle import LOCKS

    from tuning import search
    from tuning.records import SearchPlan

    explained, ended = [], []
    reason = "ValueError: conv2's window does not fit"

    def explain(trial) -> str:
        explained.append((trial.trial_id, LOCKS[chief_oracle].locked()))
        return reason

    chief_oracle.explain_refusal = explain
    chief_oracle.trial_ended = lambda trial: ended.append((trial.trial_id, trial.message))

    def end_as_a_worker(trial_id: str, objective: float) -> None:
        chief_oracle.update_trial(trial_id, {"val_accuracy": objective, "params": 10.0})
        sent = Trial.from_proto(chief_oracle.trials[trial_id].to_proto())  # no message
        sent.status = TrialStatus.COMPLETED
        chief_oracle.end_trial(sent)

    end_as_a_worker("0", float("nan"))
    assert explained == [("0", False)]
    trial = chief_oracle.trials["0"]
    assert trial.status == TrialStatus.INVALID and ended == [("0", reason)]
    assert Trial.load(str(tmp_path / "tuner" / "trial_0" / "trial.json")).message == reason
    monkeypatch.setattr(search, "refusal_reason", lambda *args: pytest.fail("worked out again"))
    row = search.row_of(trial, SearchPlan(model="lenet5"), chief_oracle.search_space)
    assert row.status == "INVALID" and row.note == reason
    end_as_a_worker(chief_oracle.create_trial("worker-2").trial_id, 0.5)
    chief_oracle.create_trial("worker-3")
    chief_oracle.end_trial_of_lost_worker("worker-3", "crashed")
    assert len(explained) == 1 and [t.status for t in chief_oracle.trials.values()] == [
        "INVALID", "COMPLETED", "FAILED"]


def test_workers_are_refused_with_a_distributed_role_or_pruning():
    from tuning.search import SearchPlan, validate_plan

    for change, message in [({"role": "chief", "oracle": "127.0.0.1:8000"}, "--workers"),
                            ({"prune": "median"}, "--workers"),
                            ({"workers": 0}, "at least 1")]:
        with pytest.raises(ValueError, match=message):
            validate_plan(SearchPlan(model="lenet5", **{"workers": 2, **change}))


def test_only_processes_that_train_set_up_data_parallelism(tmp_path, monkeypatch):
    """The chief serves the oracle and trains nothing: no strategy (on TensorFlow a
    MirroredStrategy holding every GPU), and its header does not name one; local and worker
    searches keep theirs."""
    from dataclasses import replace

    from tuning import search
    from tuning.records import SearchPlan

    set_up: list[str] = []
    monkeypatch.setattr(search, "setup_distribution",
                        lambda *_: (set_up.append("called"), (None, "data parallelism X"))[1])
    plan = SearchPlan(model="lenet5", space={"learning_rate": "0.001,0.01"}, only=True,
                      epochs=1, train_fraction=0.05)
    prepared = {}
    for role in ("chief", "worker", "local"):
        lines: list[str] = []
        prepared[role] = search.prepare_search(replace(plan, out=str(tmp_path / role)), role,
                                               lines.append)
        assert set_up == ([] if role == "chief" else ["called"]), role
        set_up.clear()
        if role != "worker":  # a worker prints no header
            assert f"distribution: {prepared[role].distribution}" in lines[0]
    assert "X" not in prepared["chief"].distribution
    assert "none in the chief" in prepared["chief"].distribution
    assert prepared["chief"].tuner.distribution_strategy is None
    # Only the chief gets its workers' refused trials without their reasons.
    assert prepared["chief"].tuner.oracle.explain_refusal is not None
    assert prepared["worker"].tuner.oracle.explain_refusal is None
    assert prepared["worker"].distribution == prepared["local"].distribution == (
        "data parallelism X")


# -- end to end: the real command, Ctrl-C, and the rerun ---------------------------------------
SEARCH = ["lenet5", "--algorithm", "grid", "--space", "kernel_sizes=3,5", "--space", "filters=4",
          "--only", "--max-trials", "3", "--epochs", "1", "--train-fraction", "0.05",
          "--batch-size", "64", "--retrain-epochs", "1"]


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(Path(stat).parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_workers_run_each_trial_once_stop_on_ctrl_c_and_resume(tmp_path):
    import tuning.search as search
    import tuning.tune as tune

    out = tmp_path / "search"
    args = [sys.executable, "-m", "zoo", "tune", *SEARCH, "--out", str(out), "--workers", "2"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": str(REPO)}
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(key, None)

    def completed() -> set[str]:
        return {p.parent.name.removeprefix("trial_") for p in out.glob("tuner/trial_*/trial.json")
                if '"COMPLETED"' in p.read_text()}

    # A terminal's Ctrl-C reaches a process whose SIGINT is at its default. pytest-xdist's
    # workers ignore SIGINT, children inherit that across exec, and Python then installs no
    # KeyboardInterrupt handler: the chief would finish the search instead (as a background
    # `zoo tune ... &` rightly does), so the child gets the default back.
    chief = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not completed():
            assert chief.poll() is None, chief.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "no trial completed in time"
            time.sleep(0.1)
        workers = _children(chief.pid)
        chief.send_signal(signal.SIGINT)  # Ctrl-C
        first = chief.communicate(timeout=60)[0]
    finally:
        if chief.poll() is None:
            chief.kill()
            chief.wait()
    assert len(workers) == 2, first[-3000:]
    assert chief.returncode != 0 and "interrupted" in first and "Traceback" not in first, \
        first[-3000:]
    assert "chief oracle on 127.0.0.1:" in first  # the port it picked is said
    time.sleep(1.0)
    assert not [pid for pid in workers if _alive(pid)], "workers left running after Ctrl-C"
    done_first = completed()
    assert done_first and len(done_first) < 3

    rerun = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]

    def ran(output: str) -> list[str]:
        return [line.split()[1] for line in output.splitlines() if line.startswith("trial ")]

    assert not set(ran(rerun.stdout)) & done_first  # finished trials are not trained again
    assert sorted(ran(first) + ran(rerun.stdout)) == ["0", "1", "2"]  # each exactly once
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["trial"] for r in rows) == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in rows)
    assert "3 trials: 3 completed" in rerun.stdout
    assert "best configuration retrained" in rerun.stdout

    # The same results, in the same form, as a single-process search of the same space.
    single = tmp_path / "single"
    tune.run_search(search.SearchPlan(
        model="lenet5", algorithm="grid", space={"kernel_sizes": "3,5", "filters": "4"},
        only=True, max_trials=1, epochs=1, train_fraction=0.05, batch_size=64, retrain=False,
        out=str(single)), echo=lambda line: None)
    # The chief retrained the best trial below --out (runs/trialID); the single search did not.
    best_trial = json.loads((out / "summary.json").read_text())["best_trial"]
    assert [p.name for p in (out / "runs").iterdir()] == [f"trial{best_trial}"]
    files = {p.name for p in out.iterdir()} - {"worker-logs", "runs"}
    assert files == {p.name for p in single.iterdir()}
    with (single / "trials.csv").open() as f:
        assert list(csv.DictReader(f).fieldnames) == list(rows[0])
    best, best_single = (json.loads((d / "best_hyperparameters.json").read_text())
                         for d in (out, single))
    assert set(best) == set(best_single)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == set(json.loads((single / "summary.json").read_text()))
    assert summary["trials"]["COMPLETED"] == 3 and "2 worker processes" in summary["distribution"]
    assert (out / "worker-logs" / "worker-1.log").exists()


def test_the_benchmark_runs_a_command_the_cli_accepts(tmp_path):
    """benchmarks/tune_workers.py (run on a GPU machine) cannot drift from `zoo tune`."""
    import argparse
    import importlib.util

    from zoo.cli.tune import tune_command

    spec = importlib.util.spec_from_file_location("tune_workers",
                                                  REPO / "benchmarks" / "tune_workers.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    settings = argparse.Namespace(train_fraction=0.1, epochs=2, batch_size=64)
    for workers in (0, 4):
        command = benchmark.search_args(workers, 12, settings, tmp_path / "out")
        tune = command.index("tune")
        assert command[tune - 2:tune] == ["-m", "zoo"]
        params = tune_command.make_context("tune", command[tune + 1:]).params
        assert params["name"] == "vgg_small" and params["dataset"] == "fashion_mnist"
        assert params["max_trials"] == 12 and params["workers"] == (workers or None)
