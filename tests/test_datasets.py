"""zoo data: import of official-format files (generated here, tiny), checksums, cache, splits."""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from official_files import RNG, make_idx_set, md5, write_files

from zoo.cli import main
from zoo.data import cache
from zoo.data.catalog import CATALOG, OfficialFile
from zoo.data.dataset import DataError
from zoo.data.imports import import_dataset
from zoo.data.load import load_dataset
from zoo.data.official_files import DatasetImportError


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch):
    home = tmp_path / "zoo-home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    return home


def cifar_pickle(entry: dict) -> bytes:
    # Protocol 2 with bytes keys: the layout of the authors' Python 2 cPickle files.
    return pickle.dumps({k.encode(): v for k, v in entry.items()}, protocol=2)


def make_cifar_set(name, monkeypatch, tmp_path, *, per_batch=12):
    """A cifar-*-python.tar.gz in the official layout; the catalog's MD5s set to its files."""
    spec = CATALOG[name]
    k = spec.num_classes
    contents, images = {}, {}
    for split, batches in spec.files.items():
        for official in batches:
            hwc = RNG.integers(0, 256, (per_batch, 32, 32, 3)).astype(np.uint8)
            rows = hwc.transpose(0, 3, 1, 2).reshape(per_batch, -1)  # R plane, G, B
            labels = [int(v) for v in np.arange(per_batch) % k]
            contents[official.name] = cifar_pickle({"data": rows, spec.label_key: labels,
                                                    "batch_label": official.name})
            images.setdefault(split, []).append(hwc)
    contents[spec.meta.name] = cifar_pickle({"label_names": list(spec.class_names)})
    files = {split: tuple(OfficialFile(f.name, md5(contents[f.name])) for f in batches)
             for split, batches in spec.files.items()}
    archive = tmp_path / spec.archive.name
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in contents.items():
            info = tarfile.TarInfo(f"{spec.archive_folder}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    splits = {split: per_batch * len(batches) for split, batches in spec.files.items()}
    monkeypatch.setitem(CATALOG, name, replace(
        spec, files=files, splits=splits,
        meta=OfficialFile(spec.meta.name, md5(contents[spec.meta.name])),
        archive=OfficialFile(spec.archive.name, md5(archive.read_bytes()))))
    return archive, contents, {s: np.concatenate(v) for s, v in images.items()}


def run_cli(*args):
    return CliRunner().invoke(main, list(args))


def nothing_cached(name):
    root = cache.datasets_root()
    if not root.exists():
        return True
    return not (root / name).exists() and not list(root.glob(f".{name}*"))


def test_idx_import_keeps_official_splits_and_pixels(tmp_path, monkeypatch):
    contents, arrays = make_idx_set("mnist", monkeypatch)
    folder = write_files(tmp_path / "raw", contents, dotted=True)  # train-images.idx3-ubyte
    result = run_cli("data", "import", "mnist", str(folder))
    assert result.exit_code == 0, result.output
    assert "checksums verified" in result.output
    data = load_dataset("mnist")
    # The official test split is the test split, in order; validation comes out of train.
    np.testing.assert_array_equal(data.x_test[..., 0], arrays["test"][0])
    np.testing.assert_array_equal(data.y_test, arrays["test"][1])
    assert len(data.y_train) == 90 and len(data.y_val) == 10
    together = np.concatenate([data.x_train, data.x_val])[..., 0]
    assert sorted(map(bytes, together)) == sorted(map(bytes, arrays["train"][0].astype(np.uint8)))
    assert data.x_train.dtype == np.uint8 and data.name == "mnist"
    assert np.bincount(data.y_val).tolist() == [1] * 10  # stratified: one of each class


def test_imported_validation_split_is_the_same_on_every_load(tmp_path, monkeypatch):
    from zoo.data.imported import validation_indices

    contents, _ = make_idx_set("mnist", monkeypatch)
    assert run_cli("data", "import", "mnist", str(write_files(tmp_path / "raw", contents))
                   ).exit_code == 0
    first, second = load_dataset("mnist"), load_dataset("mnist")
    np.testing.assert_array_equal(first.x_val, second.x_val)
    np.testing.assert_array_equal(first.y_train, second.y_train)
    # Stratified by class, the rounding handed to the largest remainders: 5.5, 2.7, 1.8 -> 5, 3, 2.
    skewed = np.repeat([0, 1, 2], [55, 27, 18])
    picks = validation_indices(skewed, 10, seed=7)
    assert len(set(picks)) == 10 and np.bincount(skewed[picks]).tolist() == [5, 3, 2]
    assert len(np.unique(validation_indices(skewed, 90, seed=7))) == 90  # no image twice
    labels = np.arange(1000) % 10
    picks = validation_indices(labels, 100, seed=7)
    np.testing.assert_array_equal(picks, validation_indices(labels, 100, seed=7))
    assert not np.array_equal(picks, validation_indices(labels, 100, seed=8))


def test_idx_gz_inside_an_archive_and_import_twice(tmp_path, monkeypatch):
    contents, arrays = make_idx_set("fashion_mnist", monkeypatch)
    folder = write_files(tmp_path / "gz", contents, gz=True)
    archive = tmp_path / "fashion.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="data/fashion")
    for _ in range(2):  # importing twice is harmless
        result = import_dataset("fashion_mnist", archive)
    assert result.verified and result.counts == {"train": 100, "test": 20}
    assert sorted(p.name for p in cache.datasets_root().iterdir()) == ["fashion_mnist"]
    assert load_dataset("fashion_mnist").class_names[0] == "T-shirt/top"


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_archive_and_extracted_batches(tmp_path, monkeypatch, name):
    archive, contents, images = make_cifar_set(name, monkeypatch, tmp_path)
    result = import_dataset(name, archive)
    assert result.verified and result.checksums[CATALOG[name].archive.name]["matches"]
    data = load_dataset(name)
    np.testing.assert_array_equal(data.x_test, images["test"])  # planes -> HWC, order kept
    assert data.image_shape == (32, 32, 3)
    assert len(data.y_train) + len(data.y_val) == len(images["train"])
    extracted = write_files(tmp_path / "batches", contents)
    assert import_dataset(name, extracted).verified


def test_checksum_mismatch_refused_in_one_line(tmp_path, monkeypatch):
    contents, _ = make_idx_set("mnist", monkeypatch)
    contents["t10k-images-idx3-ubyte"] = contents["t10k-images-idx3-ubyte"][:-1] + b"\x01"
    folder = write_files(tmp_path / "tampered", contents)
    result = run_cli("data", "import", "mnist", str(folder))
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "t10k-images-idx3-ubyte" in line
    expected = CATALOG["mnist"].files["test"][0].md5
    assert expected in line and md5(contents["t10k-images-idx3-ubyte"]) in line
    assert nothing_cached("mnist")


def test_no_verify_imports_a_modified_copy_marked_unverified(tmp_path, monkeypatch):
    contents, _ = make_idx_set("mnist", monkeypatch)
    contents["train-labels-idx1-ubyte"] = contents["train-labels-idx1-ubyte"][:-1] + b"\x03"
    folder = write_files(tmp_path / "modified", contents)
    result = run_cli("data", "import", "mnist", str(folder), "--no-verify")
    assert result.exit_code == 0 and "UNVERIFIED" in result.output
    assert "UNVERIFIED" in load_dataset("mnist").name
    assert "ready (UNVERIFIED)" in run_cli("data", "list").output
    assert "DIFFERS" in run_cli("data", "info", "mnist").output


def test_truncated_missing_wrong_kind_and_wrong_name(tmp_path, monkeypatch):
    contents, _ = make_idx_set("mnist", monkeypatch)
    images = "train-images-idx3-ubyte"
    truncated = dict(contents, **{images: contents[images][:-100]})
    folder = write_files(tmp_path / "truncated", truncated)
    no_verify = run_cli("data", "import", "mnist", str(folder), "--no-verify")
    assert no_verify.exit_code == 1 and "truncated" in no_verify.output
    missing = write_files(tmp_path / "missing", {k: v for k, v in contents.items()
                                                  if not k.startswith("t10k-labels")})
    result = run_cli("data", "import", "mnist", str(missing))
    assert result.exit_code == 1 and "has no t10k-labels-idx1-ubyte" in result.output
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an archive")
    result = run_cli("data", "import", "mnist", str(text_file))
    assert result.exit_code == 1 and "neither a folder nor" in result.output
    gz_of_truncated = tmp_path / "gz-truncated"
    write_files(gz_of_truncated, contents, gz=True)
    path = gz_of_truncated / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    result = run_cli("data", "import", "mnist", str(gz_of_truncated))
    assert result.exit_code == 1 and "not a complete gzip file" in result.output
    result = run_cli("data", "import", "minst", str(folder))
    assert result.exit_code == 1 and "did you mean mnist" in result.output
    for result in (no_verify, result):
        assert len(result.output.strip().splitlines()) == 1
    assert nothing_cached("mnist") and nothing_cached("minst")


def test_interrupted_import_leaves_nothing_that_looks_ready(tmp_path, monkeypatch):
    contents, _ = make_idx_set("mnist", monkeypatch)
    folder = write_files(tmp_path / "raw", contents)
    real_save = np.save

    def save_then_die(path, array):
        real_save(path, array)
        if str(path).endswith("x_test.npy"):
            raise KeyboardInterrupt  # a kill halfway through writing the cache

    monkeypatch.setattr(np, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        import_dataset("mnist", folder)
    assert not cache.is_ready("mnist") and nothing_cached("mnist")
    with pytest.raises(DataError, match="not imported"):
        load_dataset("mnist")


def test_pickled_code_is_refused_not_run(tmp_path, monkeypatch):
    archive, contents, _ = make_cifar_set("cifar10", monkeypatch, tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    contents["data_batch_1"] = pickle.dumps({b"data": Exploit()}, protocol=2)
    folder = write_files(tmp_path / "evil", contents)
    with pytest.raises(DatasetImportError, match="refusing to unpickle"):
        import_dataset("cifar10", folder, verify=False)
    assert not marker.exists()


def test_dataset_before_import_names_both_commands(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    message = str(err.value)
    assert "zoo data import mnist PATH" in message and "zoo data fetch mnist" in message
    result = run_cli("data", "info", "cifar100")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_fetch_offline_fails_fast_with_the_import_command(monkeypatch):
    import zoo.data.fetch as fetch

    monkeypatch.setattr(fetch, "can_reach", lambda url: "Name or service not known")
    result = run_cli("data", "fetch", "cifar10")
    assert result.exit_code == 1 and "zoo data import cifar10 PATH" in result.output
    assert "cifar-10-python.tar.gz" in result.output


def test_cache_location(tmp_path, monkeypatch, zoo_home):
    assert cache.dataset_dir("mnist") == zoo_home / "datasets" / "mnist"
    monkeypatch.delenv("ZOO_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.zoo_home() == tmp_path / "xdg" / "cnn-zoo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert cache.zoo_home() == tmp_path / "me" / ".cache" / "cnn-zoo"


def test_list_info_and_preview(tmp_path, monkeypatch):
    contents, _ = make_idx_set("mnist", monkeypatch)
    import_dataset("mnist", write_files(tmp_path / "raw", contents))
    listing = run_cli("data", "list").output
    assert "mnist           ready" in listing and "cifar10         not imported" in listing
    info = run_cli("data", "info", "mnist").output
    assert "total" in info and "matches the published MD5" in info
    # The official split the three below came from (the tiny generated files: 100 + 20).
    assert "official split: 100 training, 20 test images" in info
    assert "validation: 10 images of the official training split" in info
    assert "zoo train --preset lenet5-mnist --seed S" in info  # the results rows on MNIST
    out = tmp_path / "grid.png"
    result = run_cli("data", "preview", "mnist", "--out", str(out), "--per-class", "2")
    assert result.exit_code == 0 and out.stat().st_size > 1000


def write_image_folder(root: Path, counts: dict[str, int], size=(12, 10)) -> Path:
    from PIL import Image

    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = RNG.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / cls / f"{i}.png")
    return root


def test_train_test_folders_keep_their_splits(tmp_path):
    root = tmp_path / "pets"
    write_image_folder(root / "train", {"cat": 20, "dog": 14})
    write_image_folder(root / "test", {"cat": 3, "dog": 5})
    data = load_dataset(str(root))
    assert data.class_names == ["cat", "dog"]
    assert np.bincount(data.y_test).tolist() == [3, 5]  # test/ is the test split, untouched
    assert np.bincount(data.y_val).tolist() == [3, 2]  # 15 % of each train/ class
    assert np.bincount(data.y_train).tolist() == [17, 12]
    write_image_folder(root / "val", {"cat": 1, "dog": 2})
    data = load_dataset(str(root))
    assert np.bincount(data.y_val).tolist() == [1, 2] and len(data.y_train) == 34


def test_folder_classes_outside_train_are_refused(tmp_path):
    root = tmp_path / "pets"
    write_image_folder(root / "train", {"cat": 4, "dog": 4})
    write_image_folder(root / "test", {"cat": 2, "fox": 2})
    with pytest.raises(DataError, match="fox"):
        load_dataset(str(root))


def test_decoded_folders_are_cached_by_content(tmp_path, monkeypatch):
    import zoo.data.folders as folders

    root = write_image_folder(tmp_path / "flat", {"cat": 6, "dog": 6})
    first = load_dataset(str(root))
    decoded = []
    real = folders.decode_images

    def counting_decode(files):
        decoded.append(len(files))
        return real(files)

    monkeypatch.setattr(folders, "decode_images", counting_decode)
    second = load_dataset(str(root))
    assert decoded == []  # served from the cache
    np.testing.assert_array_equal(first.x_train, second.x_train)
    write_image_folder(root, {"cat": 1})  # rewrites cat/0.png: new content, new key
    load_dataset(str(root))
    assert decoded == [12]


def test_list_shows_prepared_tfds_sets(tmp_path):
    import json

    info = tmp_path / "tfds" / "tiny_shapes" / "1.0.0" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps({"splits": [{"name": "train", "shardLengths": ["30", "12"]},
                                           {"name": "test", "shardLengths": ["9"]}],
                                "citation": "@misc{tiny, title={Tiny}}"}))
    listing = run_cli("data", "list", "--data-dir", str(tmp_path / "tfds")).output
    assert "tfds:tiny_shapes" in listing and "prepared (tfds)" in listing and "42/9" in listing
