"""How a trained run does: confusion matrix, per-class precision/recall, training curves."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.core.runs import HISTORY_FILE, load_run_config, read_history, write_text_atomic
from zoo.data.inputs import split_for_model
from zoo.data.listing import FolderListing
from zoo.viz.figure import headless_pyplot, save_figure
from zoo.viz.inputs import LoadedRun, VizError, run_source
from zoo.viz.maps import DPI, Picture

# Above this many classes the matrix cells are too small to print counts in.
ANNOTATE_MAX_CLASSES = 20
TABLE_FORMATS = ("text", "markdown", "csv")


@dataclass
class ClassReport:
    """Per-class results of a model on one split."""

    split: str
    class_names: list[str]
    confusion: np.ndarray  # [true, predicted] counts
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of images classified correctly."""
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else 0.0


def evaluate_classes(run: LoadedRun, split: str = "test", *, dataset: str | None = None,
                     data_dir: str | None = None, batch_size: int = 256) -> ClassReport:
    """Predict a split of the run's data and tabulate the results per class."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    source = run_source(run, split, dataset=dataset, data_dir=data_dir)
    class_names = source.class_names
    # A folder is decoded to the model's size in memory (from the cache training filled) or
    # streamed past the memory budget, as the run's training chose.
    inputs, y = split_for_model(source, split, run.input_shape, batch_size=batch_size,
                                mode=run.config.get("input_mode", "auto"),
                                budget=run.config.get("memory_budget"))
    if len(y) == 0:
        raise VizError(f"the {split} split is empty")
    probs = run.model.predict(inputs, batch_size=None if isinstance(source, FolderListing)
                              else batch_size, verbose=0)
    predicted = np.argmax(probs, axis=-1)
    labels = list(range(len(class_names)))
    confusion = confusion_matrix(y, predicted, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0)
    return ClassReport(split, list(class_names), confusion, precision, recall, f1, support)


def format_class_table(report: ClassReport, fmt: str = "text") -> str:
    """The per-class table as aligned text, Markdown or CSV, with a macro-average row."""
    if fmt not in TABLE_FORMATS:
        raise VizError(f"table format must be one of {list(TABLE_FORMATS)}, got {fmt!r}")
    header = ["class", "precision", "recall", "f1", "support"]
    rows = [[name, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(int(s))] for name, p, r, f, s in
            zip(report.class_names, report.precision, report.recall, report.f1, report.support)]
    rows.append(["macro avg", f"{report.precision.mean():.3f}", f"{report.recall.mean():.3f}",
                 f"{report.f1.mean():.3f}", str(int(report.support.sum()))])
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
        return buffer.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * 4]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, lines[1])
    return "\n".join(lines) + f"\naccuracy {report.accuracy:.4f} on {report.support.sum()} " \
                              f"{report.split} images\n"


def write_class_table(report: ClassReport, path: str | Path) -> Path:
    """Write the table as CSV (.csv) or Markdown (anything else), atomically."""
    path = Path(path)
    text = format_class_table(report, "csv" if path.suffix.lower() == ".csv" else "markdown")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def plot_confusion(report: ClassReport, out: str | Path, *, title: str = "",
                   normalize: bool = False) -> Picture:
    """The confusion matrix (rows: true class, columns: predicted) with a colour bar.

    ``normalize`` shows each row as fractions (recall on the diagonal).
    """
    counts = report.confusion
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    k = len(report.class_names)
    side = min(max(4.5, 0.55 * k + 2.5), 16.0)
    size = (side + 1.2, side)
    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=size)
    shown = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(shown, ax=ax, shrink=0.8,
                 label="fraction of the true class" if normalize else "images")
    ax.set_xticks(range(k), report.class_names, rotation=45 if k > 10 else 0, ha="right"
                  if k > 10 else "center", fontsize=8)
    ax.set_yticks(range(k), report.class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= ANNOTATE_MAX_CLASSES:
        threshold = values.max() / 2
        for i in range(k):
            for j in range(k):
                text = f"{values[i, j]:.2f}" if normalize else str(int(counts[i, j]))
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if k > 10 else 9,
                        color="white" if values[i, j] > threshold else "black")
    full = (f"{title + ' - ' if title else ''}confusion on the {report.split} split: "
            f"accuracy {report.accuracy:.1%} of {int(counts.sum())}")
    ax.set_title(full, fontsize=10)
    save_figure(fig, out, dpi=DPI)
    return Picture(Path(out), size, full)


def plot_run_curves(run_dir: str | Path, out: str | Path) -> Picture:
    """Loss and accuracy per epoch, train vs validation, from a run's history.csv."""

    run_dir = Path(run_dir).expanduser()
    history_file = run_dir / HISTORY_FILE
    if not history_file.is_file():
        raise VizError(f"{run_dir} has no {HISTORY_FILE}; give a run directory written by "
                       f"`zoo train`")
    history = read_history(history_file)
    if not history.get("loss"):
        raise VizError(f"{history_file} holds no finished epoch yet")
    config = load_run_config(run_dir)
    data = config.get("dataset_name") or config.get("dataset") or ""
    title = f"{config.get('model', run_dir.name)}{' on ' + data if data else ''}: " \
            f"{len(history['loss'])} epochs"
    plot_history(history, out, title=title)
    return Picture(Path(out), (10, 4), title)


def plot_history(history: dict[str, list[float]], path: Path, title: str = "") -> Path:
    """Loss and accuracy per epoch, training vs validation, side by side."""
    plt = headless_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + metric)
            if values:
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o", markersize=3,
                        label=("validation " if prefix else "train ") + metric)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return Path(path)
