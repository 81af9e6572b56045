"""matplotlib without a display, and saving its figures atomically (every viz picture uses it)."""

from __future__ import annotations

from pathlib import Path

from zoo.core.runs import atomic_write


def headless_pyplot():
    """matplotlib.pyplot on the Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Save a figure as PNG via a temporary file, then close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    headless_pyplot().close(fig)
