"""Make the synthetic image folders of the streaming benchmarks (issue 27 item 5).

``python benchmarks/stream_folder.py /tmp/zoo-stream 50000`` writes 50,000 256x256 RGB JPEGs
(about 26 KiB each, like the issue's measurements) into 10 class folders under
``/tmp/zoo-stream/n50000``, and ``n1000`` / ``n10000`` as folders of links to the first images
of each class, so the three sizes share one set of files. Each image is a smooth random field
tinted by its class plus a little grain, deterministic in its index. Only the first 5,000 are
drawn (drawing and encoding took ~0.25 s an image on the shared 2-core machine); the others are
byte copies of image ``index % 5000`` (same class), separate files all the same, so listing,
reading and decoding cost what 50,000 distinct JPEGs cost. Files already written are kept, so
an interrupted run continues.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

CLASSES = 10
SIZE = 256
SUBSETS = (1000, 10000)
DISTINCT = 5000  # images drawn; the rest are copies (same class)


def synthetic_image(index: int, label: int) -> np.ndarray:
    """A 256x256x3 uint8 image: low-frequency noise, a class tint, fine grain."""
    from PIL import Image

    rng = np.random.default_rng(index)
    coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((SIZE, SIZE), Image.BICUBIC), np.float32)
    tint = np.array([(label * 37) % 256, (label * 91) % 256, (label * 151) % 256], np.float32)
    grain = rng.normal(0, 7, (SIZE, SIZE, 1))
    return np.clip(0.6 * field + 0.4 * tint + grain, 0, 255).astype(np.uint8)


def image_path(root: Path, index: int) -> Path:
    label = index % CLASSES
    return root / f"class{label}" / f"{index:06d}.jpg"


def write_folder(root: Path, count: int) -> Path:
    """``root/n{count}``: ``count`` images, written once."""
    from PIL import Image

    from zoo.core.runs import atomic_write

    folder = root / f"n{count}"
    for label in range(CLASSES):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        path = image_path(folder, index)
        if path.exists():
            continue
        with atomic_write(path) as tmp:
            if index < DISTINCT:
                Image.fromarray(synthetic_image(index, index % CLASSES)).save(tmp, "JPEG",
                                                                              quality=90)
            else:
                shutil.copyfile(image_path(folder, index % DISTINCT), tmp)
    return folder


def link_subset(root: Path, full: Path, count: int) -> Path:
    """``root/n{count}``: links to the first ``count`` images of ``full``."""
    folder = root / f"n{count}"
    for index in range(count):
        path = image_path(folder, index)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(image_path(full, index))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("count", type=int, nargs="?", default=50000)
    args = parser.parse_args()
    full = write_folder(args.root, args.count)
    for count in SUBSETS:
        if count < args.count:
            link_subset(args.root, full, count)
    total = sum(f.stat().st_size for f in full.rglob("*.jpg"))
    print(f"{full}: {args.count:,} images, {total / args.count / 1024:.1f} KiB each")


if __name__ == "__main__":
    main()
