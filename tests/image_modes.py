"""Test images: one grey picture saved in every image mode Pillow opens (zoo.data.images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_MODES = ("L", "I;16", "I;16B", "I", "F", "P", "LA", "RGBA", "CMYK")


def mode_copies(pixels: np.ndarray, folder: Path) -> dict[str, Path]:
    """{mode: file} holding the uint8 grey ``pixels`` in each image mode Pillow opens.

    Every copy carries exactly the same picture, so each must decode to ``pixels``.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    grey = Image.fromarray(pixels)
    alpha = Image.fromarray(np.full_like(pixels, 128))
    palette = Image.fromarray(pixels, "P")
    palette.putpalette([level for i in range(256) for level in (i, i, i)])
    white_32 = 2 ** 31 - 1  # a signed 32-bit TIFF's white
    images = {  # IMAGE_MODES's order
        "L": (grey, "png"),
        "I;16": (Image.fromarray(pixels.astype(np.uint16) * 257), "png"),
        "I;16B": (Image.fromarray((pixels.astype(np.uint16) * 257).astype(">u2")), "tif"),
        "I": (Image.fromarray(np.rint(pixels * (white_32 / 255)).astype(np.int32)), "tif"),
        "F": (Image.fromarray(pixels.astype(np.float32) / 255), "tif"),
        "P": (palette, "png"),
        "LA": (Image.merge("LA", (grey, alpha)), "png"),
        "RGBA": (Image.merge("RGBA", (grey, grey, grey, alpha)), "png"),
        "CMYK": (grey.convert("RGB").convert("CMYK"), "tif"),
    }
    paths = {}
    for mode, (image, suffix) in images.items():
        assert image.mode == mode
        paths[mode] = folder / f"{mode.replace(';', '')}.{suffix}"
        image.save(paths[mode])
    return paths
