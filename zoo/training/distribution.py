"""Data parallelism: one model trained over several devices and processes, on Keras' own APIs.

The one place where `--devices` and the multi-process settings (coordinator, number of
processes, process id) become a distribution: ``keras.distribution.DataParallel`` under JAX
(with ``jax.distributed`` joining the processes), ``tf.distribute.MirroredStrategy`` under
TensorFlow (one process only: MultiWorkerMirroredStrategy stopped in Keras 3.15's fit here).
`zoo train`, `zoo transfer` and `zoo tune`'s trials all start theirs here.

The batch size a user gives is the global batch: each step trains ``batch_size`` images split
evenly over all devices of all processes. Under JAX each process reads its own shard of the
data (``zoo.data.batches.Sharding``); under TensorFlow ``tf.distribute`` shards the input.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping

from zoo.data.batches import Sharding

ALL = "all"
# Keras' own variables (keras.distribution.initialize reads the same ones), then JAX's.
ENV_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
ENV_JAX_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
DEFAULT_TIMEOUT = 300  # seconds to wait for every process to join (JAX's own default)
LR_SCALINGS = ("linear",)
# The distribution whose scope the code runs in (``Distribution.scope``): a run started inside
# it (transfer's two phases, built inside one scope) reuses it instead of making another.
_ACTIVE: contextvars.ContextVar["Distribution | None"] = contextvars.ContextVar(
    "zoo_distribution", default=None)


class DistributionError(ValueError):
    """Devices or processes that cannot be used as asked."""


class LostProcessError(RuntimeError):
    """Another process of a multi-process run stopped; this one must stop too.

    ``exit_now``: the CLI prints the message and leaves at once, without waiting (minutes) in
    JAX's shutdown for a process that is gone.
    """

    exit_now = True


@dataclass(frozen=True)
class DistributionSettings:
    """What the user asked for: devices per process and the process group (if any)."""

    # None: one device, as without the option; N or "all": data-parallel over N/all local
    # accelerators (CPUs where there are none).
    devices: int | str | None = None
    # HOST:PORT of process 0 (JAX's coordinator), or of every process, comma-separated,
    # process 0's first (TensorFlow needs them all); Keras' job_addresses.
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def multi_process(self) -> bool:
        return (self.num_processes or 1) > 1

    @property
    def requested(self) -> bool:
        """Whether anything other than the plain one-device run was asked for."""
        return self.devices not in (None, 1) or self.multi_process

    def config(self) -> dict[str, Any]:
        return {"devices": self.devices, "num_processes": self.num_processes or 1}


def distribution_settings(record: Any) -> DistributionSettings:
    """The DistributionSettings of a training-settings record (zoo.training.settings:
    devices, coordinator, num_processes, process_id, coordinator_timeout)."""
    return DistributionSettings(devices=record.devices, coordinator=record.coordinator,
                                num_processes=record.num_processes,
                                process_id=record.process_id,
                                timeout=record.coordinator_timeout)


def parse_devices(text: str | int | None) -> int | str | None:
    """'4' -> 4, 'all' -> 'all', None -> None; anything else is refused in one line."""
    if text is None or isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif str(text).strip().lower() == ALL:
        return ALL
    else:
        try:
            value = int(str(text))
        except ValueError:
            value = 0
    if value is not None and value < 1:
        raise DistributionError(f"--devices must be a positive number or 'all', got {text!r}")
    return value


def from_environment(settings: DistributionSettings,
                     environ: Mapping[str, str] | None = None) -> DistributionSettings:
    """``settings`` with unset process fields read from Keras' (then JAX's) variables, checked.

    Raises:
        DistributionError: a malformed value, a process id outside 0..N-1, or a multi-process
            run without a coordinator or process id; before anything starts.
    """
    environ = os.environ if environ is None else environ
    coordinator = (settings.coordinator or environ.get(ENV_ADDRESSES)
                   or environ.get(ENV_JAX_COORDINATOR) or None)
    processes = settings.num_processes
    if processes is None:
        processes = _env_int(environ, ENV_PROCESSES)
    process_id = settings.process_id
    if process_id is None:
        process_id = _env_int(environ, ENV_PROCESS_ID)
    resolved = replace(settings, devices=parse_devices(settings.devices),
                       coordinator=coordinator, num_processes=processes, process_id=process_id)
    check_processes(resolved)
    return resolved


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise DistributionError(f"{name}={text!r} is not a whole number; fix or unset it") \
            from None


def check_processes(settings: DistributionSettings) -> None:
    """Refuse a process group that cannot start (see ``from_environment``)."""
    processes, process_id = settings.num_processes, settings.process_id
    if processes is not None and processes < 1:
        raise DistributionError(f"--num-processes must be at least 1, got {processes}")
    if not settings.multi_process:
        if process_id not in (None, 0):
            raise DistributionError(f"--process-id {process_id} is out of range for a single "
                                    f"process; give --num-processes")
        return
    if process_id is None:
        raise DistributionError(f"a run over {processes} processes needs this process's "
                                f"--process-id (0 to {processes - 1})")
    if not 0 <= process_id < processes:
        raise DistributionError(f"--process-id {process_id} is out of range for "
                                f"--num-processes {processes}: use 0 to {processes - 1}")
    if not settings.coordinator:
        raise DistributionError(f"a run over {processes} processes needs --coordinator "
                                f"HOST:PORT of process 0 (or {ENV_ADDRESSES})")
    addresses = coordinator_addresses(settings.coordinator)
    if len(addresses) > 1 and len(addresses) != processes:
        raise DistributionError(f"--coordinator lists {len(addresses)} addresses for "
                                f"{processes} processes; give one (process 0's) or one per "
                                f"process")
    if not settings.timeout > 0:
        raise DistributionError(f"--coordinator-timeout must be positive, got "
                                f"{settings.timeout}")


def coordinator_addresses(text: str) -> list[str]:
    """'10.0.0.1:1234,10.0.0.2:1234' -> the addresses, each checked as HOST:PORT."""
    addresses = [a.strip() for a in text.split(",") if a.strip()]
    for address in addresses or [text]:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DistributionError(f"--coordinator needs HOST:PORT (e.g. 10.0.0.1:1234), got "
                                    f"{address!r}")
    return addresses


@dataclass
class Distribution:
    """A running data-parallel setup: which devices, which process, and Keras' object for it."""

    backend: str
    devices: list[str]  # this process's devices
    device_count: int  # every process's devices together
    all_devices: list[str] = field(default_factory=list)  # their names (where known)
    num_processes: int = 1
    process_id: int = 0
    keras_distribution: Any = None  # JAX: keras.distribution.DataParallel
    strategy: Any = None  # TensorFlow: a tf.distribute strategy
    api: str = ""
    settings: DistributionSettings | None = None

    @property
    def writes(self) -> bool:
        """Whether this process writes the run folder, checkpoints and exports (process 0)."""
        return self.process_id == 0

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build, compile, train and evaluate inside this: variables are made replicated."""
        if _ACTIVE.get() is self:
            yield
            return
        inner = (self.strategy.scope() if self.strategy is not None
                 else self.keras_distribution.scope())
        token = _ACTIVE.set(self)
        try:
            with inner:
                yield
        finally:
            _ACTIVE.reset(token)

    def share(self, payload: bytes) -> bytes:
        """Process 0's ``payload``, in every process (the others' is ignored)."""
        if self.num_processes == 1:
            return payload
        return broadcast_bytes(payload if self.writes else None)  # JAX: the only one

    def check_batch(self, batch_size: int, what: str = "--batch-size") -> None:
        """Refuse a global batch that does not split evenly over the devices."""
        if batch_size % self.device_count:
            lower = max(self.device_count, batch_size - batch_size % self.device_count)
            raise DistributionError(
                f"{what} {batch_size} does not split evenly over {self.device_count} devices; "
                f"use a multiple of {self.device_count} (e.g. {lower})")

    def sharding(self) -> Sharding | None:
        """How this process reads the data: its shard, padded to split over the devices (JAX;
        under TensorFlow, tf.distribute shards and splits the batches itself)."""
        if self.backend != "jax":
            return None
        return Sharding(devices=self.device_count, index=self.process_id,
                        count=self.num_processes)

    def record(self, batch_size: int) -> dict[str, Any]:
        """What a run folder records about its distribution."""
        return {"api": self.api, "backend": self.backend,
                "devices": self.all_devices or self.devices,
                "device_count": self.device_count, "processes": self.num_processes,
                "global_batch": batch_size,
                "per_process_batch": batch_size // self.num_processes,
                "per_device_batch": batch_size // self.device_count}

    def describe(self) -> str:
        where = (f"{self.device_count} devices in {self.num_processes} processes (this is "
                 f"process {self.process_id}: {', '.join(self.devices)})"
                 if self.num_processes > 1 else
                 f"{self.device_count} devices ({', '.join(self.devices)})")
        return f"{self.api} over {where}"


def start_distribution(settings: DistributionSettings) -> Distribution | None:
    """Join the processes (if several) and set up data parallelism; None for one device.

    Call before anything runs on the backend (JAX must join its processes first). A second
    call in the same process with the same process group reuses it.

    Raises:
        DistributionError: more devices than this machine has, a bad process group, or a
            backend without data parallelism here (PyTorch).
    """
    import keras

    settings = from_environment(settings)
    if not settings.requested:
        return None
    active = _ACTIVE.get()
    if active is not None and active.settings == settings:
        return active
    backend = keras.backend.backend()
    if backend == "jax":
        started = _jax_distribution(settings)
    elif backend == "tensorflow":
        started = _tensorflow_distribution(settings)
    else:
        started = None
    if started is not None:
        started.settings = settings
        return started
    raise DistributionError(f"--devices/--num-processes need the jax or tensorflow backend, "
                            f"not {backend}; set KERAS_BACKEND=jax or tensorflow")


def accelerator_count() -> int:
    """GPUs (or TPUs) this process sees under the current backend, without claiming them."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return len([d for d in jax.local_devices() if d.platform != "cpu"])
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    return 0


def global_sharding() -> Sharding | None:
    """The input sharding that Keras' global data-parallel distribution (JAX) needs, if one
    is set (``zoo tune`` sets it for every trial), else None."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    current = keras.distribution.distribution()
    if current is None:
        return None
    return Sharding(devices=int(current.device_mesh.devices.size))


def choose_devices(requested: int | str | None, available: list[str], kind: str) -> list[str]:
    """The first N (or all) of ``available``; refused in one line if there are fewer."""
    if requested in (None, ALL):
        return list(available) if requested == ALL else available[:1]
    if requested > len(available):
        hint = (" (on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N "
                "devices under JAX)" if kind == "CPU" else "")
        raise DistributionError(
            f"--devices {requested}: this machine has {len(available)} {kind} device"
            f"{'s' if len(available) != 1 else ''} ({', '.join(available)}); use --devices "
            f"{len(available)} or all{hint}")
    return list(available[:requested])


# -- JAX ---------------------------------------------------------------------------------------
def _jax_distribution(settings: DistributionSettings) -> Distribution:
    import jax
    import keras

    if settings.multi_process:
        join_jax_processes(settings)
    local = jax.local_devices()
    accelerators = [d for d in local if d.platform != "cpu"]
    pool = accelerators or local
    kind = pool[0].platform.upper()
    chosen = choose_devices(settings.devices, [f"{d.platform}:{d.id}" for d in pool], kind)
    mine = [d for d in pool if f"{d.platform}:{d.id}" in chosen]
    if settings.multi_process:
        counts = _gather_counts(len(mine))
        if len(set(counts)) > 1:
            raise DistributionError(f"the processes use different numbers of devices "
                                    f"({', '.join(map(str, counts))}); give every process the "
                                    f"same --devices")
        everyone = [d for d in jax.devices() if d.platform == kind.lower()]
        ids = set(_gather_ids([d.id for d in mine]))
        devices = [d for d in everyone if d.id in ids]
    else:
        devices = mine
    # Each process feeds its own shard (zoo.data.batches.Sharding), so Keras must not shard
    # the input again.
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    return Distribution(backend="jax", devices=chosen, device_count=len(devices),
                        all_devices=[f"{d.platform}:{d.id}" for d in devices],
                        num_processes=settings.num_processes or 1,
                        process_id=settings.process_id or 0,
                        keras_distribution=distribution, api="keras.distribution.DataParallel")


def join_jax_processes(settings: DistributionSettings) -> None:
    """``jax.distributed.initialize`` for this process, given up after ``settings.timeout``.

    ``keras.distribution.initialize`` does the same with no timeout to pass (and JAX's own
    ends the process with a C++ stack trace), so a watchdog ends a wait for a coordinator
    that never answers with one line.
    """
    import jax
    from jax._src import distributed as jax_distributed

    state = jax_distributed.global_state
    if state.client is not None:  # joined by an earlier run in this process
        if (state.num_processes, state.process_id) != (settings.num_processes,
                                                       settings.process_id):
            raise DistributionError(
                f"this process already joined a group of {state.num_processes} as process "
                f"{state.process_id}; start a new process for another group")
        return
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        raise DistributionError("JAX ran something before the processes were joined; start "
                                "the distribution first, in a fresh process")
    address = coordinator_addresses(settings.coordinator)[0]
    done = threading.Event()
    timer = threading.Timer(settings.timeout, _give_up_waiting,
                            args=(address, settings, done))
    timer.daemon = True
    timer.start()
    try:
        jax.distributed.initialize(
            coordinator_address=address, num_processes=settings.num_processes,
            process_id=settings.process_id,
            # After the watchdog, so that ours is the message a user sees.
            initialization_timeout=int(settings.timeout) + 60)
    finally:
        done.set()
        timer.cancel()


def _give_up_waiting(address: str, settings: DistributionSettings, done: threading.Event):
    if done.is_set():
        return
    who = ("the other processes never joined" if settings.process_id == 0
           else f"the coordinator at {address} never answered")
    sys.stderr.write(f"Error: process {settings.process_id} of {settings.num_processes}: {who} "
                     f"within {settings.timeout:g} s; start every process (same --coordinator "
                     f"and --num-processes, each its own --process-id) or raise "
                     f"--coordinator-timeout\n")
    sys.stderr.flush()
    os._exit(1)


def _gather_counts(count: int) -> list[int]:
    import numpy as np
    from jax.experimental import multihost_utils

    return [int(v) for v in np.asarray(multihost_utils.process_allgather(np.int32(count)))]


def _gather_ids(ids: list[int]) -> list[int]:
    import numpy as np
    from jax.experimental import multihost_utils

    return [int(v) for v in np.asarray(multihost_utils.process_allgather(
        np.asarray(ids, np.int32))).ravel()]


def broadcast_bytes(payload: bytes | None) -> bytes:
    """Process 0's ``payload`` in every process (JAX multi-process); others pass None."""
    import numpy as np
    from jax.experimental import multihost_utils

    data = np.frombuffer(payload or b"", np.uint8)
    size = int(multihost_utils.broadcast_one_to_all(np.int64(len(data))))
    buffer = np.zeros(size, np.uint8)
    buffer[:len(data)] = data[:size]
    return bytes(np.asarray(multihost_utils.broadcast_one_to_all(buffer)))


# -- TensorFlow --------------------------------------------------------------------------------
def _tensorflow_distribution(settings: DistributionSettings) -> Distribution:
    import tensorflow as tf

    if settings.multi_process:
        # Tried with two local processes: MultiWorkerMirroredStrategy joined them, then Keras
        # 3.15's fit stopped in both ("Attempt to convert a value (PerReplica:{...})").
        raise DistributionError(
            "several processes train under JAX only (keras.distribution.DataParallel); set "
            "KERAS_BACKEND=jax, or use --devices alone for one machine's GPUs under TensorFlow")
    gpus = tf.config.list_logical_devices("GPU")
    pool = gpus or tf.config.list_logical_devices("CPU")
    kind = "GPU" if gpus else "CPU"
    names = [d.name for d in pool]
    shown = [n.split("device:")[-1].lower() for n in names]
    chosen = choose_devices(settings.devices, shown, kind)
    devices = [names[shown.index(c)] for c in chosen]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return Distribution(backend="tensorflow", devices=chosen, device_count=len(devices),
                        strategy=strategy, api="tf.distribute.MirroredStrategy")


# -- learning rate -----------------------------------------------------------------------------
def scaled_learning_rate(learning_rate: float, scaling: str | None, device_count: int) -> float:
    """The learning rate to train with: as given, or times the devices (``linear``)."""
    if scaling is None:
        return learning_rate
    if scaling not in LR_SCALINGS:
        raise DistributionError(f"unknown --scale-lr {scaling!r}; use linear (or leave it "
                                f"out to keep --lr as given)")
    return learning_rate * device_count
