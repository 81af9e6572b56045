"""Using exports: classify image files with any format, and list what saved_models/ holds."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.runs import SAVED_MODELS
from zoo.data.decode import read_fitted
from zoo.deploy.serving import (
    MANIFEST_FILE,
    PREFERRED_ORDER,
    load_predictor,
    read_manifest,
    resolve_version_dir,
)


def load_images(paths: list[str | Path], input_shape: tuple[int, int, int]) -> np.ndarray:
    """Image files as one uint8 (N, H, W, C) batch fitted to the export's input.

    Files are decoded as training decodes image folders (``zoo.data.decode.read_fitted``:
    every mode scaled to 8 bits by ``zoo.data.images``, a large JPEG at reduced scale), and
    channels and size adapted as ``zoo.data.dataset.fit_images`` adapts arrays (grey <-> RGB,
    small margins zero-padded, otherwise resized).
    """
    if not paths:
        raise ValueError("no image files given")
    return np.stack([read_fitted(path, tuple(input_shape)) for path in paths])


def image_batches(paths: list[str | Path], input_shape: tuple[int, int, int]):
    """(files, uint8 images) batches of the images in ``paths`` (a folder stands for every image
    in it, sorted): a few files are decoded here, many are streamed (zoo.data.stream: parallel
    workers, memory flat in the number of images)."""
    from zoo.data.listing import list_files
    from zoo.data.stream import ImageStream

    if not paths:
        raise ValueError("no image files given")
    listing = list_files(paths)
    if len(listing.files) <= STREAM_FROM:
        yield listing.files, load_images(listing.files, input_shape)
        return
    stream = ImageStream(listing, tuple(input_shape))
    start = 0
    try:
        for images, _ in stream.batches("test", batch_size=PREDICT_BATCH, as_uint8=True):
            images = np.asarray(images)
            yield listing.files[start:start + len(images)], images
            start += len(images)
    except Exception as err:
        stream.check_read(err)  # a worker's unreadable file, in one line naming it
        raise


# Up to this many files are decoded at once; more are streamed in batches of PREDICT_BATCH.
STREAM_FROM = 256
PREDICT_BATCH = 256


def choose_format(manifest: dict[str, Any], fmt: str | None) -> str:
    """The requested format, or the export's lightest one."""
    formats = manifest.get("formats", {})
    if fmt is not None:
        if fmt not in formats:
            raise ValueError(f"this export has no {fmt!r} format; it has {', '.join(formats)}")
        return fmt
    # A keras file exported with --unsafe runs code when loaded: only when asked for by name.
    return next(f for f in PREFERRED_ORDER
                if f in formats and formats[f].get("safe_mode", True))


def _missing_format(version_dir: Path, manifest: dict[str, Any], fmt: str) -> str:
    """Why ``fmt`` cannot run, naming the versions of the same export that have it."""
    having = []
    for other in sorted(version_dir.parent.glob("*"), key=lambda p: p.name.zfill(9)):
        if other.name.isdigit() and (other / MANIFEST_FILE).is_file():
            if fmt in json.loads((other / MANIFEST_FILE).read_text()).get("formats", {}):
                having.append(str(other))
    hint = (f"; {', '.join(having)} has it" if having else
            f"; export one with `zoo export RUN --format {fmt}`")
    return (f"export {version_dir} has no {fmt!r} format (it has "
            f"{', '.join(manifest.get('formats', {})) or 'none'}){hint}")


def predict_images(export_dir: str | Path, paths: list[str | Path], *, top_k: int = 3,
                   fmt: str | None = None) -> dict[str, Any]:
    """Run an export on image files: {'export', 'format', 'predictions': [per image top-k]}."""
    version_dir = resolve_version_dir(export_dir)
    manifest = read_manifest(version_dir)
    if fmt is not None and fmt not in manifest.get("formats", {}):
        raise ValueError(_missing_format(version_dir, manifest, fmt))
    fmt = choose_format(manifest, fmt)
    class_names = manifest["class_names"]
    if not 1 <= top_k:
        raise ValueError(f"--top-k must be at least 1, got {top_k}")
    top_k = min(top_k, len(class_names))
    shape = tuple(manifest["input"]["shape"][1:])
    batches = image_batches(paths, shape)
    first = next(batches)  # a bad image is named before the model is loaded
    predictor = load_predictor(version_dir, fmt)
    predictions = []
    for files, images in itertools.chain([first], batches):
        for path, probs in zip(files, predictor(images)):
            order = np.argsort(-probs, kind="stable")[:top_k]
            predictions.append({"image": str(path), "top": [
                {"class_id": int(i), "class_name": class_names[i],
                 "probability": float(probs[i])} for i in order]})
    return {"export": str(version_dir), "format": fmt, "predictions": predictions}


def list_exports(root: str | Path = SAVED_MODELS) -> list[dict[str, Any]]:
    """One row per exported model under ``root``: versions, and the latest one's formats/metrics.

    Hidden folders (exports in progress or interrupted) and training runs are not exports.
    """
    root = Path(root)
    rows = []
    for model_dir in sorted(p for p in root.glob("*") if p.is_dir()):
        versions = sorted(int(v.name) for v in model_dir.iterdir()
                          if v.name.isdigit() and (v / MANIFEST_FILE).is_file())
        if not versions:
            continue
        latest = json.loads((model_dir / str(versions[-1]) / MANIFEST_FILE).read_text())
        training = latest.get("training", {})
        rows.append({
            "name": model_dir.name, "versions": versions, "latest": versions[-1],
            "model": latest["model"]["name"], "trained": latest["model"]["trained"],
            "formats": list(latest.get("formats", {})),
            "dataset": training.get("dataset_name") or training.get("dataset"),
            "test_metrics": training.get("test_metrics", {}),
            "max_abs_diff": max((f.get("max_abs_diff", 0.0)
                                 for f in latest.get("formats", {}).values()), default=None),
        })
    return rows
