"""One way to decode an image file: every Pillow mode to 8-bit grey or RGB, scaled, or refused.

Folder data sets, streamed folders, `zoo predict`, `zoo viz ... --image` and `zoo weights
classify` all decode through ``open_image`` so that an image reaches every model the same way.
Pillow's own ``convert("L")`` clips deeper images instead of scaling them (a 16-bit PNG becomes
all 255), so each mode is mapped to 0..255 here from the range its file format declares:

- 8-bit modes (1, L, P, RGB, CMYK, YCbCr, HSV, ...) convert as Pillow converts them;
- alpha (LA, RGBA, PA, ...) is dropped, as Keras' ``load_img``, ``tf.io.decode_image`` and
  torchvision's loader drop it, so the zoo sees what those pipelines see;
- 16-bit integers (I;16, 16-bit PGM) scale 0..65535 -> 0..255;
- 32-bit integers (mode I) scale by the bit depth and signedness the TIFF declares; a negative
  pixel, or a format that declares no depth, is refused;
- floats (mode F) are taken as 0..1 (the convention of TIFF float images, scikit-image and
  ``tf.image.convert_image_dtype``); a float image outside 0..1 is refused with its range.

Anything else is refused in one line naming the file and its mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.dataset import DataError

EIGHT_BIT_MODES = {"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "HSV"}
ALPHA_MODES = {"LA": "L", "La": "L", "PA": "RGB", "RGBA": "RGB", "RGBa": "RGB"}
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
# Formats whose mode-I images are Pillow's 16-bit decodes (PGM/PPM with maxval > 255 is
# rescaled to 0..65535 by Pillow; PNG's deepest sample is 16 bits).
SIXTEEN_BIT_FORMATS = {"PNG", "PPM"}
TIFF_BITS_PER_SAMPLE, TIFF_SAMPLE_FORMAT, TIFF_SIGNED = 258, 339, 2


class ImageDecodeError(DataError):
    """An image file cannot be read, or its mode cannot be scaled to 8 bits."""


def _refuse(path, img, why: str) -> ImageDecodeError:
    return ImageDecodeError(
        f"image {path} has mode {img.mode!r}, {why}; convert it to 8- or 16-bit grey or RGB "
        f"(e.g. with Pillow or ImageMagick) or remove it")


def _integer_range(path, img) -> int:
    """The white level of a mode-I image, from what its file format declares."""
    if img.format in SIXTEEN_BIT_FORMATS:
        return 65535
    tags = getattr(img, "tag_v2", None)
    bits = tags.get(TIFF_BITS_PER_SAMPLE) if tags is not None else None
    if not bits:
        raise _refuse(path, img, f"32-bit integers whose range its {img.format} file does "
                                 f"not declare")
    bits = int(bits[0] if isinstance(bits, tuple) else bits)
    signed = tags.get(TIFF_SAMPLE_FORMAT) in (TIFF_SIGNED, (TIFF_SIGNED,))
    return 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1


def _scaled(values: np.ndarray, white: float) -> np.ndarray:
    return np.rint(values.astype(np.float64) * (255.0 / white)).astype(np.uint8)


def _to_eight_bit(path, img):
    """``img`` as an 8-bit 'L' or 'RGB' Pillow image with its values scaled, not clipped."""
    from PIL import Image

    mode = img.mode
    if mode in ("L", "RGB"):
        return img.copy()
    if mode in EIGHT_BIT_MODES:
        return img.convert("L" if mode == "1" else "RGB")
    if mode in ALPHA_MODES:
        # Pillow converts La (premultiplied) to LA only, not straight to L.
        return img.convert("LA" if mode == "La" else mode).convert(ALPHA_MODES[mode])
    pixels = np.asarray(img)
    if mode in SIXTEEN_BIT_MODES:
        return Image.fromarray(_scaled(pixels, 65535), "L")
    if mode == "I":
        white = _integer_range(path, img)
        if pixels.min() < 0:
            raise _refuse(path, img, f"with negative pixels (down to {pixels.min()}), which "
                                     f"have no grey level")
        return Image.fromarray(_scaled(np.minimum(pixels, white), white), "L")
    if mode == "F":
        low, high = float(np.nanmin(pixels)), float(np.nanmax(pixels))
        if not (np.isfinite(pixels).all() and low >= 0.0 and high <= 1.0):
            raise _refuse(path, img, f"floats from {low:g} to {high:g}; float pixels must lie "
                                     f"in 0..1")
        return Image.fromarray(_scaled(pixels, 1.0), "L")
    raise _refuse(path, img, "which the zoo cannot scale to 8 bits")


def open_image(path: str | Path, draft_size: tuple[int, int] | None = None):
    """The image file as a loaded 8-bit Pillow image in mode 'L' or 'RGB', scaled from its mode.

    ``draft_size`` (width, height) lets a JPEG decode at the smallest DCT scale (1/2, 1/4,
    1/8) that still covers that size (Pillow's ``Image.draft``): far fewer pixels to decode
    when the model's input is much smaller than the stored image (zoo.data.decode).

    Raises ImageDecodeError (a DataError) naming the file for a missing, unreadable, too
    large or unsupported image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if draft_size is not None and img.format == "JPEG":
                img.draft(None, draft_size)
            return _to_eight_bit(path, img)
    except FileNotFoundError:
        raise ImageDecodeError(f"image {path} does not exist") from None
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(f"image {path} is too large to decode safely ({err}); shrink it "
                               f"first") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        if isinstance(err, ImageDecodeError):
            raise
        raise ImageDecodeError(f"cannot read image {path}: {err}; remove or replace the "
                               f"file") from None


def read_image(path: str | Path, channels: int) -> np.ndarray:
    """The image file as uint8 (H, W, channels), channels 1 (grey) or 3 (RGB)."""
    if channels not in (1, 3):
        raise DataError(f"only grey (1) or RGB (3) channels can be read from image files, not "
                        f"{channels}; build the model with --input-shape H,W,1 or H,W,3")
    img = open_image(path)
    pixels = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return pixels.reshape(*pixels.shape[:2], channels)
