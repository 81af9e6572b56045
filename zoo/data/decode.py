"""One image file -> the model's input (H, W, C) uint8, decoding no more pixels than needed.

Every mode is brought to 8-bit grey or RGB by ``zoo.data.images.open_image`` (the zoo's one
decoder). The in-memory path (``zoo.data.folders``) and the streaming path (``zoo.data.stream``)
both call ``read_fitted``, so the two see the same pixels. A JPEG much larger than the target
is decoded at a reduced scale (libjpeg's DCT scaling by 1/2, 1/4 or 1/8, through Pillow's
``Image.draft``) and only then resized (measured in benchmarks/stream_input.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.dataset import fit_images
from zoo.data.images import open_image


def read_fitted(path: str | Path, shape: tuple[int, int, int], *, reduced: bool = True
                ) -> np.ndarray:
    """The image file as uint8 ``shape`` (H, W, C), fitted as ``fit_images`` fits arrays.

    Args:
        path: the image file.
        shape: the model's (height, width, channels).
        reduced: decode a JPEG at reduced scale when the target is at most half its size
            (False: always at full size, for comparison).
    """
    height, width, _ = shape
    img = open_image(path, (width, height) if reduced else None)
    pixels = np.asarray(img, dtype=np.uint8)
    pixels = pixels.reshape(*pixels.shape[:2], 1 if img.mode == "L" else 3)
    return fit_images(pixels[None], tuple(shape), what=f"image {path}")[0]
