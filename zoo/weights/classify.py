"""Classify image files with a pretrained entry that has a classifier (`zoo weights classify`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.images import open_image
from zoo.weights.catalog import split_key
from zoo.weights.load import load_into, resolve
from zoo.weights.preprocess import class_names, preprocess_array
from zoo.weights.store import build_architecture

# torchvision's evaluation transform: shorter side to 256, centre crop 224 (scaled likewise).
RESIZE_FRACTION = 224 / 256


def load_photo(path: str | Path, size: int, channels: int) -> np.ndarray:
    """An image file as uint8 (size, size, channels): shorter side resized, centre crop."""
    from PIL import Image

    img = open_image(path).convert("L" if channels == 1 else "RGB")
    if channels == 1:  # digits: the whole image, no crop
        return np.asarray(img.resize((size, size), Image.BILINEAR), np.uint8)[..., None]
    short = round(size / RESIZE_FRACTION)
    scale = short / min(img.size)
    img = img.resize((max(short, round(img.width * scale)),
                      max(short, round(img.height * scale))), Image.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), np.uint8)


def classify(key: str, paths: list[str | Path], *, top_k: int = 3) -> list[dict]:
    """Top-k classes per image for entry ``key`` ('MODEL:ENTRY').

    Args:
        key: an entry with a classifier, e.g. MobileNetV2:torchvision or MobileNetV2:imagenet.
        paths: image files (anything Pillow reads).
        top_k: how many classes to return per image.
    """
    model_name, name = split_key(key)
    resolved = resolve(model_name, name)  # 'imagenet': the present ImageNet entry
    entry = resolved.entry
    names = class_names(entry)
    if names is None:
        raise ValueError(f"{entry.key} has no classifier (convolutions only); pick an entry "
                         f"with one (`zoo weights list`)")
    model = build_architecture(entry)
    load_into(model, resolved)
    height, _, channels = model.input_shape[1:]
    batch = np.stack([load_photo(p, height, channels) for p in paths])
    probabilities = np.asarray(model.predict(preprocess_array(batch, entry.preprocessing),
                                             verbose=0))
    results = []
    for path, row in zip(paths, probabilities):
        best = np.argsort(row)[::-1][:top_k]
        results.append({"image": str(path), "verified": resolved.verified,
                        "top": [{"class": names[i], "index": int(i),
                                 "probability": float(row[i])} for i in best]})
    return results
