"""`zoo tune`: hyperparameter search over a zoo model's builder arguments with keras-tuner."""

from __future__ import annotations

import click

from zoo.cli.options import input_shape_option, parse_shape, training_options
from zoo.training.settings import settings_of

ALGORITHMS = ("random", "hyperband", "bayesian", "grid")
# tuning.records.SearchPlan's own defaults (--deterministic is not offered: trials always are).
TUNE_DEFAULTS = {"epochs": 5, "deterministic": True}


def _parse_space(pairs: tuple[str, ...]) -> dict[str, str]:
    space = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected NAME=CHOICES, got {pair!r}", param_hint="--space")
        if key.strip() in space:
            raise click.BadParameter(f"{key.strip()} is given twice", param_hint="--space")
        space[key.strip()] = value
    return space


@click.command("tune")
@click.argument("name")
@training_options("dataset", "data_dir", "input_mode", "memory_budget", "skip_bad_images",
                  defaults=TUNE_DEFAULTS)
@click.option("--algorithm", default="random", show_default=True,
              help=f"keras-tuner search: {', '.join(ALGORITHMS)}.")
@click.option("--max-trials", default=None, type=click.IntRange(min=1),
              help="Trials to run (default 10; grid: the whole grid). Refused configurations "
                   "count as trials, as in keras-tuner. Hyperband ignores it.")
@training_options("epochs", defaults=TUNE_DEFAULTS,
                  epochs={"help": "Epochs per trial (hyperband: the most epochs any model "
                                  "gets)."})
@click.option("--objective", default="val_accuracy", show_default=True,
              help="val_accuracy, val_loss, accuracy or loss.")
@click.option("--space", "space", multiple=True, metavar="NAME=CHOICES",
              help="Narrow or override a dimension: kernel_sizes=3,5  filters=16:128 (powers "
                   "of two)  depths=1:3  dropout=0:0.5:0.25  normalization=none,batch  "
                   "stages=1,2,3  learning_rate=0.001,0.01. Repeatable.")
@click.option("--only", is_flag=True,
              help="Search only the --space dimensions; the rest keep the builder's defaults.")
@click.option("--increasing-filters", is_flag=True,
              help="Refuse configurations whose feature-map counts decrease with depth.")
@click.option("--max-params", default=None, type=click.IntRange(min=1),
              help="Refuse (without training) configurations with more parameters.")
@click.option("--max-macs", default=None, type=click.IntRange(min=1),
              help="Refuse (without training) configurations with more multiply-accumulates "
                   "per image.")
@click.option("--max-latency-ms", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Refuse (without training) configurations slower than this: batch-1 "
                   "inference, median of 20 calls, measured on this machine.")
@click.option("--cost", default=None, type=click.Choice(["macs", "params", "latency"]),
              help="Record this cost per trial and report the Pareto front of the objective "
                   "against it (pareto.png, a front table in trials.md).")
@click.option("--prune", default=None, type=click.Choice(["median", "asha"]),
              help="Stop hopeless trials early: median (below the median of finished trials "
                   "at the same epoch) or asha (asynchronous successive halving).")
@click.option("--prune-warmup-epochs", default=1, show_default=True,
              type=click.IntRange(min=1),
              help="Epochs every trial trains before it can be pruned (asha: its first rung).")
@click.option("--prune-warmup-trials", default=3, show_default=True,
              type=click.IntRange(min=0),
              help="Trials that must have reached an epoch before others are pruned there.")
@click.option("--isolate", is_flag=True,
              help="Run each trial in a fresh process (for backends or models that leak "
                   "memory across trials).")
@training_options("batch_size", "train_fraction", "seed", "class_weight",
                  defaults=TUNE_DEFAULTS)
@input_shape_option
@click.option("--out", default=None,
              help="Search directory (default saved_models/tuning/NAME); running again with "
                   "the same one resumes and does not redo finished trials.")
@click.option("--retrain/--no-retrain", default=True, show_default=True,
              help="Retrain the best configuration into a run directory under saved_models/.")
@click.option("--retrain-epochs", default=None, type=click.IntRange(min=1),
              help="Epochs for that retraining (default: --epochs).")
@click.option("--compare-default", is_flag=True,
              help="Also train the builder's default configuration with the same budget.")
@click.option("--chief", "role", flag_value="chief",
              help="Run the chief oracle of a distributed search (serves trials, writes results).")
@click.option("--worker", "role", flag_value="worker",
              help="Run a worker that takes trials from the chief at --oracle.")
@click.option("--oracle", default=None, metavar="HOST:PORT",
              help="Address of the chief oracle (the chief listens on it).")
@click.option("--tuner-id", default=None, help="This worker's name (default worker-HOST-PID).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Train N trials at a time in N worker processes on this machine, with "
                   "keras-tuner's chief oracle in this process on a free local port; each "
                   "worker gets its share of the CPUs and of the GPU memory.")
@training_options("dtype_policy", defaults=TUNE_DEFAULTS)
@training_options("devices", defaults=TUNE_DEFAULTS, devices={
    "metavar": "N|all", "help": "Train every trial data-parallel over N (or all) local devices "
                                "(docs/training.md); default: every GPU, or one device without "
                                "GPUs."})
def tune_command(name, settings, algorithm, max_trials, objective, space, only,
                 increasing_filters, max_params, max_macs, max_latency_ms, cost, prune,
                 prune_warmup_epochs, prune_warmup_trials, isolate, input_shape, out, retrain,
                 retrain_epochs, compare_default, role, oracle, tuner_id, workers) -> None:
    """Search hyperparameters of model NAME (kernel sizes, feature maps, depth, dropout,
    normalization, learning rate: derived from its builder) with keras-tuner, then retrain the
    best configuration into a run directory."""
    from tuning.tune import SearchPlan, run_search

    if max_trials is None and algorithm != "grid":
        max_trials = 10
    plan = SearchPlan(
        model=name, **settings_of(settings), algorithm=algorithm,
        max_trials=max_trials, objective=objective, space=_parse_space(space),
        only=only, increasing_filters=increasing_filters, max_params=max_params,
        max_macs=max_macs, max_latency_ms=max_latency_ms, cost=cost, prune=prune,
        prune_warmup_epochs=prune_warmup_epochs, prune_warmup_trials=prune_warmup_trials,
        isolate=isolate, out=out, input_shape=parse_shape(input_shape), retrain=retrain,
        retrain_epochs=retrain_epochs,
        compare_default=compare_default, role=role or "local", oracle=oracle,
        tuner_id=tuner_id, workers=workers,
    )
    run_search(plan, echo=click.echo)


COMMANDS = [tune_command]
