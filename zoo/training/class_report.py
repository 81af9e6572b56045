"""Classes as a practitioner needs to see them: counts, imbalance, weights, per-class results.

Overall accuracy hides a class the model never predicts: on the inspection photos of issue 30
(1,508 / 295 / 106 / 715 images) the smallest class had recall 0 in 5 of 6 runs while accuracy
looked fine. So a run prints its per-class counts first, warns when the classes are far apart,
offers Keras' ``class_weight`` ('balanced': n / (k * n_c), scikit-learn's formula, so every
class weighs as much in the loss as a balanced set would), and reports per-class recall and
macro F1 beside the test accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.training.settings import CLASS_WEIGHTS

# Largest over smallest class in the training split from which a run warns: at 5:1 a model
# that never predicts the small class still looks accurate (the photos: 14:1).
IMBALANCE_WARNING_RATIO = 5.0


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    """Images per class index."""
    return [int(n) for n in np.bincount(np.asarray(labels, np.int64), minlength=num_classes)]


def imbalance_ratio(counts: list[int]) -> float:
    """Largest class over smallest (inf when a class is empty)."""
    return max(counts) / min(counts) if min(counts) else float("inf")


def count_lines(labels: np.ndarray, class_names: list[str], split: str = "training"
                ) -> list[str]:
    """'classes (training images): a 63, b 14, ...' and, when large, the imbalance warning."""
    counts = class_counts(labels, len(class_names))
    shown = ", ".join(f"{name} {n:,}" for name, n in zip(class_names, counts))
    ratio = imbalance_ratio(counts)
    lines = [f"classes ({split} images): {shown} (largest/smallest {ratio:.1f}x)"]
    if ratio >= IMBALANCE_WARNING_RATIO:
        small = class_names[int(np.argmin(counts))]
        lines.append(f"warning: the classes are imbalanced ({ratio:.1f}:1); accuracy can look "
                     f"fine while {small!r} is never predicted: watch its recall below, or "
                     f"pass --class-weight balanced")
    return lines


def check_class_weight(value: str | None) -> None:
    """Raise ValueError for a class weighting the zoo does not offer."""
    if value is not None and value not in CLASS_WEIGHTS:
        raise ValueError(f"--class-weight must be one of {', '.join(CLASS_WEIGHTS)}, got "
                         f"{value!r}")


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Keras ``class_weight`` for 'balanced': n / (k * n_c) per class (scikit-learn's)."""
    counts = np.asarray(class_counts(labels, num_classes), np.float64)
    total = counts.sum()
    return {c: float(total / (num_classes * n)) if n else 0.0 for c, n in enumerate(counts)}


def per_class_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]
                      ) -> dict[str, Any]:
    """Per-class recall, precision, F1 and support, and their macro F1 (unweighted mean)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    per_class = {}
    for c, name in enumerate(class_names):
        hits = int(np.sum((y_true == c) & (y_pred == c)))
        support, predicted = int(np.sum(y_true == c)), int(np.sum(y_pred == c))
        recall = hits / support if support else 0.0
        precision = hits / predicted if predicted else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"recall": recall, "precision": precision, "f1": f1,
                           "support": support}
    macro_f1 = float(np.mean([m["f1"] for m in per_class.values()])) if per_class else 0.0
    return {"test_macro_f1": macro_f1, "test_per_class": per_class}


def report_lines(metrics: dict[str, Any]) -> list[str]:
    """The per-class recall line and the macro F1, as the commands print them."""
    per_class = metrics.get("test_per_class") or {}
    if not per_class:
        return []
    recalls = ", ".join(f"{name} {m['recall']:.2f}" for name, m in per_class.items())
    return [f"test recall per class: {recalls}; macro F1 {metrics['test_macro_f1']:.4f}"]


def kept_epoch(history: dict[str, list[float]]) -> int | None:
    """The 1-based epoch whose model the best-val_loss checkpoint kept (the first best, as
    ModelCheckpoint replaces only on a strict improvement), None without val_loss."""
    losses = [v if np.isfinite(v) else np.inf for v in history.get("val_loss", [])]
    if not losses or not np.isfinite(min(losses)):
        return None
    return int(np.argmin(losses)) + 1
