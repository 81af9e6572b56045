"""Whether a folder already holds the job asked for, and whether that job finished.

One answer for the three commands that write into a folder named by ``--out`` and are run
again into it after a kill or to look at what they did: ``zoo train`` (a run directory),
``zoo compare --sweep`` (a sweep folder and the backups of its unfinished runs) and ``zoo tune``
(a search folder). Each writes its settings to the folder's ``config.json`` before any work;
the same command again compares them with its own:

- the folder holds no ``config.json``: a new job (or one written before the command recorded
  its settings), nothing to compare;
- the settings differ: ``JobFolderError`` naming them, before anything is loaded or replaced,
  so no result measured under other settings is mixed in or overwritten;
- the same job, unfinished: the command resumes it (a run from its last finished epoch, a
  sweep or search with the runs or trials it has not finished);
- the same job, finished: the command says so, shows the finished result and exits 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from zoo.core.runs import CONFIG_FILE, jsonable

# Plain words for settings whose differences are listed key by key.
NAMES = {"hparams": "hyperparameters"}


class JobFolderError(ValueError):
    """A folder holds another job than the one asked for, or a config that cannot be read."""


@dataclass
class EarlierJob:
    """The job a folder already holds (the same one as asked for)."""

    folder: Path
    config: dict[str, Any]  # its config.json
    finished: bool  # its finished-marker file exists


def read_job_config(folder: Path) -> dict[str, Any] | None:
    """The folder's ``config.json``, or None when it has none.

    Raises:
        JobFolderError: the file exists but is not a JSON object.
    """
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise JobFolderError(f"cannot read {path} ({err}); pass another --out, or move "
                             f"{folder} away") from None
    if not isinstance(config, dict):
        raise JobFolderError(f"{path} is not a zoo config (a JSON object); pass another --out, "
                             f"or move {folder} away")
    return config


def earlier_job(folder: str | Path, job: Mapping[str, Any], keys: Iterable[str], *,
                finished_file: str | None = None, resume_keys: Iterable[str] | None = None,
                defaults: Mapping[str, Any] | None = None, what: str = "a {model} run",
                advice: str = "pass another --out, or delete it to start over"
                ) -> EarlierJob | None:
    """The job ``folder`` holds, checked to be the one described by ``job``.

    Args:
        folder: the job's folder (it need not exist).
        job: the new job's settings, as its ``config.json`` will hold them.
        keys: the settings that make two jobs the same.
        finished_file: the file whose presence says the job finished (a run's metrics.json);
            None for jobs finished piece by piece (a sweep's runs, a search's trials).
        resume_keys: the settings compared while the job is unfinished, where they are fewer
            than ``keys`` (a killed run may resume with more epochs, not another model).
        defaults: the values of settings that a folder written before they existed did not
            record; a setting neither recorded nor here is not compared.
        what: the job's kind, for the message ("a {model} run", "sweep runs"); ``{model}``
            is the model the folder holds.
        advice: what to do when the folder holds another job.

    Returns:
        None when the folder holds no job yet, else the earlier job (the same one).

    Raises:
        JobFolderError: the folder holds another job (the message names up to three
            settings that differ) or a config.json that cannot be read.
    """
    folder = Path(folder)
    old = read_job_config(folder)
    if old is None:
        return None
    finished = finished_file is not None and (folder / finished_file).exists()
    compared = keys if finished or resume_keys is None else resume_keys
    now = jsonable(dict(job))
    other_model, differences = None, []
    for key in compared:
        missing = object()
        before = old.get(key, (defaults or {}).get(key, missing))
        if before is missing:
            continue
        after = now.get(key, (defaults or {}).get(key))
        if before == after:
            continue
        if key == "model":
            other_model = after
        elif isinstance(before, dict) and isinstance(after, dict):
            changed = sorted(k for k in before.keys() | after.keys()
                             if before.get(k) != after.get(k))
            differences.append(f"other {NAMES.get(key, key)} (" + ", ".join(
                f"{k}={_shown(before.get(k))} there, {_shown(after.get(k))} now"
                for k in changed[:3]) + ")")
        else:
            differences.append(f"{key}={json.dumps(before)}, not {json.dumps(after)}")
    if other_model is None and not differences:
        return EarlierJob(folder, old, finished)
    subject = what.format(model=old.get("model", "?"))
    if finished:
        subject = subject.replace("a ", "a finished ", 1)
    text = (subject + (f", not {other_model}" if other_model is not None else "")
            + (f" with {'; '.join(differences[:3])}" if differences else ""))
    raise JobFolderError(f"{folder} holds {text}; {advice}")


def _shown(value: Any) -> str:
    if value is None:
        return "the default"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)
