"""`zoo tune --workers N`: keras-tuner's chief and N worker processes on one machine.

This is keras-tuner's own distributed mode (its documented chief/worker protocol:
KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT, gRPC), started by one
command on one machine, which its users asked for (keras-tuner #220, #413). The process that
runs `zoo tune` is the chief: it picks a free port on 127.0.0.1, serves its oracle there
(``tuner.search`` in a thread: keras-tuner's chief loop) and starts N workers
(``python -m tuning.workers``: a `zoo tune --worker` each, with its own tuner id, its share of
the machine and its log in ``OUT/worker-logs/``). The one oracle creates every trial, so each
runs once, and records every trial, so the chief writes the same tables, plots, best
hyperparameters and retrained model as a single-process search once all workers are done.

Sharing the machine: ``tuning.sharing``.

Stopping: SIGINT (Ctrl-C) or SIGTERM to the chief stops every worker (SIGTERM to each worker's
process group, SIGKILL after ``STOP_GRACE_SECONDS``); keras-tuner's files are written whole or
not at all (``tuning.tuners``), so the same command resumes the search, the interrupted trials
again. Workers run in their own sessions, so a terminal's Ctrl-C reaches the chief only, and
each stops by itself if the chief disappears (killed with SIGKILL). A worker that crashes is
reported in one line; the trial it was running is ended FAILED (keras-tuner's chief would
otherwise wait for it forever) and another worker takes its place, up to
``MAX_WORKER_CRASHES`` crashes, after which the search stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from tuning import search
from tuning.records import SearchPlan, SearchResult
from tuning.results import format_trial_line
from tuning.sharing import (
    CPUS_ENV,
    GPU_FRACTION_ENV,
    WorkerShare,
    available_cpus,
    free_port,
    share_machine,
    visible_gpus,
    worker_environment,
)
from zoo.training.interrupts import sigterm_as_interrupt

CHIEF_HOST = "127.0.0.1"
LOGS_DIR = "worker-logs"
# Crashed worker processes replaced before the search stops (keras-tuner's own limit for
# crashed trials in a row is 3 as well).
MAX_WORKER_CRASHES = 3
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2
CHIEF_START_TIMEOUT = 60.0
# Set for each worker process: the chief it watches.
CHIEF_PID_ENV = "ZOO_TUNE_CHIEF_PID"


# -- the workers --------------------------------------------------------------------------------
@dataclass
class Worker:
    """One worker process."""

    tuner_id: str
    share: WorkerShare
    log: Path
    process: subprocess.Popen


def worker_command(plan: SearchPlan, address: str, tuner_id: str) -> list[str]:
    """``python -m tuning.workers PLAN``: a `zoo tune` worker of ``plan``."""
    worker_plan = replace(plan, role="worker", oracle=address, tuner_id=tuner_id, workers=None,
                          retrain=False, compare_default=False)
    python = [sys.executable] + (["-S"] if sys.flags.no_site else [])  # as the chief runs
    return [*python, "-m", "tuning.workers", json.dumps(asdict(worker_plan))]


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def last_line(path: Path, limit: int = 200) -> str:
    """The last non-empty line of a log (what a crashed worker said last)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line]
    return (lines[-1][:limit] if lines else "no output")


@dataclass
class WorkerPool:
    """Starts, watches, replaces and stops the worker processes of one search.

    ``command(tuner_id)`` is the argv of a worker (``worker_command`` in a search).
    """

    shares: list[WorkerShare]
    logs: Path
    command: Callable[[str], list[str]]
    echo: Callable[[str], None] = print
    running: list[Worker] = field(default_factory=list)
    started: list[Worker] = field(default_factory=list)
    crashes: int = 0

    def start(self) -> None:
        """Start one worker per share."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for share in self.shares:
            self._start_worker(share)

    def _start_worker(self, share: WorkerShare) -> Worker:
        tuner_id = f"worker-{len(self.started) + 1}"
        log = self.logs / f"{tuner_id}.log"
        env = worker_environment(share, os.environ)
        env[CHIEF_PID_ENV] = str(os.getpid())
        # The tree this module is in comes first, so workers run the chief's code.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[1])]
            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        with log.open("w") as out:
            process = subprocess.Popen(self.command(tuner_id), env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        worker = Worker(tuner_id, share, log, process)
        self.running.append(worker)
        self.started.append(worker)
        return worker

    def supervise(self, oracle, chief: ChiefServer | None = None) -> None:
        """Return once every worker has finished; replace crashed ones.

        Args:
            oracle: the chief's oracle (``tuning.tuners.ChiefOracle``): a crashed worker's
                trial is ended FAILED there.
            chief: the chief's serving thread (``serve_chief``), if one serves the workers.

        Raises:
            RuntimeError: the chief stopped, keras-tuner stopped the search (too many failed
                trials in a row), or ``MAX_WORKER_CRASHES`` workers crashed.
        """
        while self.running:
            time.sleep(POLL_SECONDS)
            problem = chief.failure() if chief is not None else None
            if problem:
                raise RuntimeError(f"the chief oracle stopped ({problem}); worker logs in "
                                   f"{self.logs}")
            for worker in [w for w in self.running if w.process.poll() is not None]:
                self.running.remove(worker)
                if worker.process.returncode != 0:
                    self._crashed(worker, oracle)
            if getattr(oracle, "stop_reason", None):
                raise RuntimeError(f"{oracle.stop_reason} (worker logs in {self.logs})")
            if chief is not None and chief.finished():
                # keras-tuner's chief stops serving once no trial is ongoing and every worker
                # that asked for one has been told the search is over (oracle_chief.exit_chief).
                # A worker that had not asked yet, being slower to start than the rest of the
                # search took (a finished Hyperband search run again), would wait an hour for
                # an answer; it holds no trial, so it is stopped.
                self.stop()
                return

    def _crashed(self, worker: Worker, oracle) -> None:
        self.crashes += 1
        code = worker.process.returncode
        # A worker that raised says why on its last line; one killed by a signal said nothing.
        how = _exit_description(code) + (f": {last_line(worker.log)}" if code > 0 else "")
        trial = oracle.end_trial_of_lost_worker(
            worker.tuner_id, f"the worker process running it crashed ({how})")
        line = (f"worker {worker.tuner_id} (pid {worker.process.pid}) crashed ({how}); "
                + (f"its trial {trial.trial_id} is recorded FAILED; " if trial else ""))
        if self.crashes >= MAX_WORKER_CRASHES:
            self.echo(line + f"log: {worker.log}")
            raise RuntimeError(f"{self.crashes} worker processes crashed, the last one {how} "
                               f"(logs in {self.logs}); fix the cause and run the same "
                               f"command again to resume the search")
        replacement = self._start_worker(worker.share)
        self.echo(line + f"{replacement.tuner_id} takes its place; log: {worker.log}")

    def stop(self) -> None:
        """Stop every worker still running: SIGTERM to its process group, then SIGKILL."""
        for signum, grace in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            alive = [w for w in self.running if w.process.poll() is None]
            for worker in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(worker.process.pid, signum)
            deadline = time.monotonic() + grace
            for worker in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        self.running = [w for w in self.running if w.process.poll() is None]


# -- the chief ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _environment(values: Mapping[str, str], defaults: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` (and ``defaults`` where unset) in os.environ; restore it afterwards."""
    before = {k: os.environ.get(k) for k in [*values, *defaults]}
    os.environ.update(values)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class ChiefServer:
    """keras-tuner's chief loop serving in a thread (``serve_chief``)."""

    thread: threading.Thread
    failures: list[str]

    def failure(self) -> str | None:
        """Why the chief stopped serving, if it failed."""
        return self.failures[0] if self.failures else None

    def finished(self) -> bool:
        """Whether the chief has stopped serving (the search is over, or it failed)."""
        return not self.thread.is_alive()


def serve_chief(tuner, address: str) -> ChiefServer:
    """Serve ``tuner``'s oracle at ``address`` (keras-tuner's chief loop, in a thread).

    Returns once the server answers.
    """
    import grpc

    failure: list[str] = []

    def serve() -> None:
        try:
            tuner.search(verbose=0)  # the chief's search: serves until every worker stopped
        except BaseException as err:  # reported by the supervisor, in one line
            failure.append(f"{type(err).__name__}: {err}")

    thread = threading.Thread(target=serve, name="keras-tuner-chief", daemon=True)
    thread.start()
    deadline = time.monotonic() + CHIEF_START_TIMEOUT
    with grpc.insecure_channel(address) as channel:
        ready = grpc.channel_ready_future(channel)
        while True:
            if failure:
                raise RuntimeError(f"the chief oracle could not start on {address}: "
                                   f"{failure[0]}")
            try:
                ready.result(timeout=0.5)
                break
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the chief oracle did not answer on {address} within "
                                       f"{CHIEF_START_TIMEOUT:.0f} s; run the command again")
    return ChiefServer(thread, failure)


def search_is_over(oracle) -> bool:
    """Whether every trial of the budget has been created and has ended (a finished search
    run again), so no worker needs to start."""
    from keras_tuner.engine.trial import TrialStatus

    return (oracle.max_trials is not None and len(oracle.trials) >= oracle.max_trials
            and all(t.status != TrialStatus.RUNNING for t in oracle.trials.values()))


def search_with_workers(plan: SearchPlan, echo: Callable[[str], None] = print) -> SearchResult:
    """Run ``plan`` with keras-tuner's chief here and ``plan.workers`` worker processes.

    Args:
        plan: a checked plan with ``workers`` set (role local).
        echo: receives the progress lines: the header, one line per trial as the chief ends
            it, worker crashes, the summary.

    Returns:
        The same result as a single-process search of ``plan``.
    """
    address = f"{CHIEF_HOST}:{free_port()}"
    host, port = search.parse_address(address)
    chief = {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": host,
             "KERASTUNER_ORACLE_PORT": str(port)}
    # The chief trains nothing while workers run: it must not reserve their GPU memory.
    defaults = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    # SIGTERM stops the search as Ctrl-C does (workers stopped, nothing half-written).
    with _environment(chief, defaults), search.quiet_search_warnings(), sigterm_as_interrupt():
        prepared = search.prepare_search(plan, "chief", echo)
        oracle = prepared.tuner.oracle
        ended_here: list[str] = []

        def report(trial: Any) -> None:
            ended_here.append(trial.trial_id)
            echo(format_trial_line(search.row_of(trial, plan, prepared.space), plan.objective))

        oracle.trial_ended, oracle.serving_workers = report, True
        shares = share_machine(plan.workers, available_cpus(), visible_gpus())
        start = time.perf_counter()
        logs = plan.out_dir / LOGS_DIR
        pool = WorkerPool(shares, logs, lambda tid: worker_command(plan, address, tid), echo)
        if search_is_over(oracle):
            echo("every trial has ended already; no worker started")
        else:
            chief_server = serve_chief(prepared.tuner, address)
            echo(f"chief oracle on {address} (keras-tuner, gRPC); {plan.workers} worker "
                 f"process{'es' if plan.workers > 1 else ''}: "
                 + "; ".join(f"worker-{k + 1}: {s.describe()}" for k, s in enumerate(shares))
                 + f"; logs in {logs}")
            try:
                pool.start()
                pool.supervise(oracle, chief_server)
            except KeyboardInterrupt:
                pool.stop()
                echo(f"interrupted: stopped the chief and its worker processes (trials ended "
                     f"in this session: {len(ended_here)}); run the same command again to "
                     f"resume the search")
                raise
            finally:
                pool.stop()
        seconds = time.perf_counter() - start
    result = SearchResult(
        out=plan.out_dir, space=prepared.space, rows=[], seconds=seconds,
        trials_run_here=len(ended_here),
        distribution=f"{plan.workers} worker process{'es' if plan.workers > 1 else ''} on "
                     f"this machine, keras-tuner chief at "
                     f"{address} (" + "; ".join(f"worker-{k + 1}: {s.describe()}"
                                               for k, s in enumerate(shares)) + ")")
    return search.finish_search(plan, prepared, result, echo)


# -- a worker process ---------------------------------------------------------------------------
def _watch_chief(chief_pid: int) -> None:
    """Stop this worker if the chief that started it is gone (killed without a chance to stop
    its workers): a worker would otherwise wait for its oracle for an hour."""
    def watch() -> None:
        while os.getppid() == chief_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-chief", daemon=True).start()


def _take_share() -> None:
    """Run on this worker's CPUs; cap its GPU memory where the backend needs a call for it."""
    cpus = os.environ.get(CPUS_ENV)
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    fraction = os.environ.get(GPU_FRACTION_ENV)
    if fraction:
        import keras

        if keras.backend.backend() == "torch":
            import torch

            if torch.cuda.is_available():
                torch.cuda.set_per_process_memory_fraction(float(fraction))


def worker_main(argv: Sequence[str]) -> int:
    """A worker process: ``python -m tuning.workers PLAN_JSON``; its exit status."""
    if CHIEF_PID_ENV in os.environ:
        _watch_chief(int(os.environ[CHIEF_PID_ENV]))
    _take_share()
    values = json.loads(argv[0])
    if values.get("input_shape") is not None:
        values["input_shape"] = tuple(values["input_shape"])
    try:
        search.search_here(SearchPlan(**values), echo=lambda line: print(line, flush=True))
    except Exception as err:
        import traceback

        traceback.print_exc()
        print(f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}",
              flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
