"""Pretrained weights: converters layer by layer, safe reading, import/verify, build(weights=)."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from torch_format import save_legacy, save_zip

import zoo
from zoo.cli import main
from zoo.weights import catalog, convert
from zoo.weights.entry import IMAGENET_MEAN_STD, WeightsEntry
from zoo.weights.pth import read_state_dict
from zoo.weights.safe_pickle import UnsafePickleError, load_numpy_pickle

RNG = np.random.default_rng(0)
# A tiny VGG: the same layer kinds, names and flatten as vgg11, in milliseconds.
TINY_VGG = {"input_shape": (8, 8, 3), "filters": (4, 6), "depths": (1, 1),
            "dense_units": (5,), "num_classes": 3, "dropout": 0.0}


def _torchvision_vgg_state(hparams=TINY_VGG, rng=RNG) -> dict[str, np.ndarray]:
    """A state dict laid out as torchvision's VGG (features.N, classifier.N), random values."""
    state, channels, index = {}, hparams["input_shape"][2], 0
    for width in hparams["filters"]:
        state[f"features.{index}.weight"] = rng.normal(size=(width, channels, 3, 3))
        state[f"features.{index}.bias"] = rng.normal(size=width)
        channels, index = width, index + 3  # conv, relu, pool
    side = hparams["input_shape"][0] // 2 ** len(hparams["filters"])
    features = channels * side * side
    for j, units in enumerate([*hparams["dense_units"], hparams["num_classes"]]):
        state[f"classifier.{3 * j}.weight"] = rng.normal(size=(units, features)) * 0.3
        state[f"classifier.{3 * j}.bias"] = rng.normal(size=units)
        features = units
    return {k: v.astype(np.float32) for k, v in state.items()}


def _torch_forward(state: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """torchvision's VGG forward pass in NumPy, NCHW as torch computes it."""
    x = images.transpose(0, 3, 1, 2).astype(np.float64)
    convs = sorted({int(k.split(".")[1]) for k in state if k.startswith("features")})
    for i in convs:
        w, b = state[f"features.{i}.weight"], state[f"features.{i}.bias"]
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        n, _, h, wd = x.shape
        out = np.zeros((n, w.shape[0], h, wd))
        for r in range(3):
            for c in range(3):
                out += np.einsum("nchw,oc->nohw", padded[:, :, r:r + h, c:c + wd], w[:, :, r, c])
        x = np.maximum(out + b[None, :, None, None], 0)
        x = x.reshape(n, x.shape[1], h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    x = x.reshape(len(x), -1)  # torch flattens channels first
    dense = sorted({int(k.split(".")[1]) for k in state if k.startswith("classifier")})
    for j, i in enumerate(dense):
        x = x @ state[f"classifier.{i}.weight"].T + state[f"classifier.{i}.bias"]
        if j < len(dense) - 1:
            x = np.maximum(x, 0)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- layouts, layer by layer


def test_conv_kernel_oihw_to_hwio_computes_torch_cross_correlation():
    import keras

    w = RNG.normal(size=(5, 3, 3, 3)).astype(np.float32)
    x = RNG.normal(size=(2, 6, 6, 3)).astype(np.float32)
    layer = keras.layers.Conv2D(5, 3, use_bias=False)
    layer.build((None, 6, 6, 3))
    layer.set_weights([convert.conv_kernel_oihw_to_hwio(w)])
    expected = np.zeros((2, 4, 4, 5))
    for r in range(3):
        for c in range(3):
            expected += np.einsum("nhwc,oc->nhwo", x[:, r:r + 4, c:c + 4, :], w[:, :, r, c])
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-4)


def test_depthwise_kernel_matches_torch_grouped_conv():
    import keras

    w = RNG.normal(size=(4, 1, 3, 3)).astype(np.float32)  # torch: groups = channels
    x = RNG.normal(size=(1, 5, 5, 4)).astype(np.float32)
    layer = keras.layers.DepthwiseConv2D(3, use_bias=False)
    layer.build((None, 5, 5, 4))
    layer.set_weights([convert.depthwise_kernel_to_keras(w)])
    expected = np.zeros((1, 3, 3, 4))
    for r in range(3):
        for c in range(3):
            expected += x[:, r:r + 3, c:c + 3, :] * w[:, 0, r, c]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-4)


def test_first_dense_after_flatten_reorders_chw_to_hwc():
    maps = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)  # (N, H, W, C)
    w = RNG.normal(size=(7, 5 * 3 * 4)).astype(np.float32)  # torch reads (C, H, W) flattened
    torch_out = maps.transpose(0, 3, 1, 2).reshape(2, -1) @ w.T
    keras_out = maps.reshape(2, -1) @ convert.dense_after_flatten(w, (3, 4, 5))
    np.testing.assert_allclose(keras_out, torch_out, rtol=1e-5, atol=1e-4)
    assert not np.allclose(maps.reshape(2, -1) @ w.T, torch_out)  # a plain transpose is wrong


def test_batchnorm_epsilon_is_folded_exactly_in_inference():
    import keras

    channels = 6
    gamma, beta = RNG.normal(size=channels), RNG.normal(size=channels)
    mean = RNG.normal(size=channels)
    # Two channels with a variance below Keras' 1e-3: var + 1e-5 - 1e-3 would be negative.
    variance = np.array([2.0, 0.5, 1e-2, 3e-3, 4e-4, 0.0])
    x = RNG.normal(size=(3, channels)).astype(np.float32)
    torch_out = gamma * (x - mean) / np.sqrt(variance + 1e-5) + beta
    layer = keras.layers.BatchNormalization()  # epsilon 1e-3
    layer.build((None, channels))
    g, v = convert.fold_batchnorm_epsilon(gamma, variance, file_epsilon=1e-5,
                                          layer_epsilon=layer.epsilon)
    assert (v >= 0).all()
    np.testing.assert_allclose(v[:3] + 1e-3, variance[:3] + 1e-5)  # var_k + 1e-3 = var_t + 1e-5
    layer.set_weights([g, beta, mean, v])
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), torch_out, rtol=1e-4,
                               atol=1e-4)
    unfolded = keras.layers.BatchNormalization()
    unfolded.build((None, channels))
    unfolded.set_weights([gamma, beta, mean, variance])
    assert not np.allclose(np.asarray(unfolded(x, training=False)), torch_out, atol=1e-3)


def test_torchvision_state_dict_converts_a_whole_vgg_exactly():
    state = _torchvision_vgg_state()
    model = zoo.build("vgg11", **TINY_VGG)
    layers = convert.torchvision_to_layers(state, model)
    assert list(layers) == ["block1_conv1", "block2_conv1", "fc1", "predictions"]
    convert.assign(model, layers)
    images = RNG.uniform(size=(4, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(images)), _torch_forward(state, images),
                               atol=1e-5)


def test_torchvision_state_dict_for_another_architecture_is_refused():
    state = _torchvision_vgg_state()
    model = zoo.build("vgg11", **{**TINY_VGG, "filters": (4, 7)})
    with pytest.raises(convert.ConversionError, match="block2_conv1"):
        convert.assign(model, convert.torchvision_to_layers(state, model))
    with pytest.raises(convert.ConversionError, match="weighted modules"):
        convert.torchvision_to_layers(dict(list(state.items())[:-2]), model)


def test_mobilenet_v2_batchnorm_and_padding_follow_torchvision():
    from zoo.weights.applications import torchvision_mobilenet_v2

    model = torchvision_mobilenet_v2(input_shape=(32, 32, 3), include_top=False)
    norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert {layer.epsilon for layer in norms} == {1e-5}
    assert model.get_layer("Conv1_pad").padding == ((1, 1), (1, 1))
    assert model.get_layer("Conv1").padding == "valid"
    assert model.get_layer("block_1_pad").padding == ((1, 1), (1, 1))


# ---------------------------------------------------------------- reading files safely


@pytest.mark.parametrize("save", [save_zip, save_legacy], ids=["zip", "legacy"])
def test_pth_reader_reads_both_torch_formats(tmp_path, save):
    state = _torchvision_vgg_state()
    tensors = read_state_dict(save(state, tmp_path / "w.pth"))
    assert list(tensors) == list(state)
    for key in state:
        np.testing.assert_array_equal(tensors[key], state[key])


def test_pth_reader_agrees_with_torch_where_installed(tmp_path):
    torch = pytest.importorskip("torch")
    state = _torchvision_vgg_state()
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "t.pth")
    tensors = read_state_dict(tmp_path / "t.pth")
    for key in state:
        np.testing.assert_array_equal(tensors[key], state[key])


class _Exploit:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_malicious_pth_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"features.0.weight": _Exploit()}))
    with pytest.raises(UnsafePickleError, match="system"):
        read_state_dict(path)
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(UnsafePickleError):
        read_state_dict(legacy)
    assert not (tmp_path / "pwned").exists()


def test_truncated_pth_is_refused(tmp_path):
    path = save_legacy(_torchvision_vgg_state(), tmp_path / "w.pth")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        read_state_dict(path)


def test_lpips_checkpoint_converts_and_malicious_one_is_refused(tmp_path):
    convs = {f"Conv_{i}": {"kernel": RNG.normal(size=(3, 3, c_in, c_out)).astype(np.float32),
                           "bias": RNG.normal(size=c_out).astype(np.float32)}
             for i, (c_in, c_out) in enumerate([(3, 4), (4, 6)])}
    tree = {"VGG16_0": convs, "NetLinLayer_0": {"Conv_0": {"kernel": np.ones((1, 1, 4, 1))}}}
    path = tmp_path / "vgg.ckpt"
    path.write_bytes(pickle.dumps(tree))
    model = zoo.build("vgg11", **{**TINY_VGG, "include_top": False})
    layers = convert.lpips_to_layers(load_numpy_pickle(path), model)
    np.testing.assert_array_equal(layers["block2_conv1"][0], convs["Conv_1"]["kernel"])
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"VGG16_0": _Exploit()}))
    with pytest.raises(UnsafePickleError):
        load_numpy_pickle(evil)
    assert not (tmp_path / "pwned").exists()


def test_keras_applications_h5_matches_layers_by_name(tmp_path):
    import h5py

    model = zoo.build("vgg11", **TINY_VGG)
    path = tmp_path / "vgg_keras.h5"
    expected = {}
    with h5py.File(path, "w") as f:  # the legacy Keras layout keras.applications ships
        names = [layer.name for layer in model.layers]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for layer in model.layers:
            group = f.create_group(layer.name)
            weight_names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = weight_names
            arrays = [RNG.normal(size=w.shape).astype(np.float32) for w in layer.weights]
            for name, array in zip(weight_names, arrays):
                group[name.decode()] = array
            if arrays:
                expected[layer.name] = arrays
    notop = zoo.build("vgg11", **{**TINY_VGG, "include_top": False})
    layers = convert.keras_h5_to_layers(path, notop)
    assert sorted(layers) == ["block1_conv1", "block2_conv1"]
    np.testing.assert_array_equal(layers["block2_conv1"][0], expected["block2_conv1"][0])
    assert sorted(convert.keras_h5_to_layers(path, model)) == sorted(expected)


def _write_keras_applications_h5(model, path):
    """Write ``model`` as keras.applications' weight files are written: Keras' legacy
    weights-only HDF5 (root ``layer_names``, ``backend``, ``keras_version``; one group per
    layer with ``weight_names`` and one dataset per weight), as Keras 2's
    ``model.save_weights("x.h5")`` wrote them. Keras 3 keeps that writer only privately
    (``keras.src.legacy.saving``, present in 3.0-3.15); the loader is public
    (``model.load_weights("x.h5")``, which keras.applications calls on its downloads)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def test_keras_applications_vgg16_file_gives_keras_outputs_in_the_zoo_vgg16(tmp_path):
    """No genuine keras.applications file is available offline, so one is written from
    keras.applications.VGG16 itself in the files' layout; imported as vgg16:keras_notop, the
    zoo's vgg16 then computes what keras.applications.VGG16 computes with that file."""
    import h5py
    import keras

    from zoo.weights.store import import_weights

    shape = (32, 32, 3)  # convolution weights do not depend on the input size
    theirs = keras.applications.VGG16(weights=None, include_top=False, input_shape=shape)
    path = _write_keras_applications_h5(
        theirs, tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    with h5py.File(path, "r") as f:  # the layout the converter reads
        names = [str(n, "utf8") if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        assert "model_weights" not in f and names[-1] == "block5_pool"
        assert len(f["block1_conv1"].attrs["weight_names"]) == 2  # kernel, bias
    keras_loaded = keras.applications.VGG16(weights=str(path), include_top=False,
                                            input_shape=shape)
    result = import_weights(path, unverified=True, as_key="vgg16:keras_notop")
    assert result.layers == 13 and not result.verified  # random weights: not the official MD5
    ours = zoo.build("vgg16", weights="keras_notop", input_shape=shape)
    images = RNG.uniform(0, 255, size=(2, *shape)).astype(np.float32)
    expected = np.asarray(keras_loaded(images))
    assert np.abs(expected).max() > 0  # not a dead network: the comparison means something
    np.testing.assert_allclose(np.asarray(ours(images)), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- import, verify, build


@pytest.fixture
def tiny_entry(tmp_path, monkeypatch):
    """A known entry for a tiny torchvision-layout VGG file generated here.

    Its weights are the same whichever tests ran before in this process (its own generator,
    not the module's shared RNG): test_photos' grey tolerance is measured on them."""
    path = save_zip(_torchvision_vgg_state(rng=np.random.default_rng(0)),
                    tmp_path / "tiny_vgg-0123.pth")
    entry = WeightsEntry(
        model="vgg11", name="tiny", description="tiny test VGG", dataset="imagenet",
        file_name=path.name, checksum=hashlib.sha256(path.read_bytes()).hexdigest(),
        checksum_kind="sha256", license="test", source="generated", converter="torchvision",
        preprocessing=IMAGENET_MEAN_STD, classifier=True, hparams=TINY_VGG)
    monkeypatch.setattr(catalog, "application_entries", lambda: (entry,))
    return entry, path


def test_import_identifies_converts_and_build_loads(tiny_entry):
    from zoo.weights.store import entry_dir, import_weights, verify_entry

    entry, path = tiny_entry
    result = import_weights(path)
    assert result.entry == entry and result.verified
    assert (entry_dir(entry) / "model.weights.h5").is_file()
    assert verify_entry(entry)[0] == "ok"
    model = zoo.build("vgg11", weights="tiny")
    images = RNG.uniform(size=(2, 8, 8, 3)).astype(np.float32)
    state = read_state_dict(path)
    np.testing.assert_allclose(np.asarray(model(images)), _torch_forward(state, images),
                               atol=1e-5)
    # 'imagenet' picks the present ImageNet entry; the convolutions load at another size.
    features = zoo.build("vgg11", weights="imagenet",
                         **{**TINY_VGG, "input_shape": (16, 16, 3), "include_top": False})
    np.testing.assert_array_equal(features.get_layer("block1_conv1").get_weights()[0],
                                  model.get_layer("block1_conv1").get_weights()[0])


def test_verify_reads_ok_corrupt_unverified_and_missing_from_the_manifest(tmp_path,
                                                                         monkeypatch):
    """zoo weights verify's verdicts, on a stored entry written by hand (no model built)."""
    import json

    from zoo.weights.store import entry_dir, verify_entry

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    entry = WeightsEntry(
        model="vgg11", name="handmade", description="d", dataset="imagenet",
        file_name="x.pth", checksum="0" * 64, checksum_kind="sha256", license="l", source="s",
        converter="torchvision", preprocessing=IMAGENET_MEAN_STD, classifier=True)
    assert verify_entry(entry) == ("missing", "not imported (zoo weights import PATH/x.pth)")
    folder = entry_dir(entry)
    folder.mkdir(parents=True)
    (folder / "model.weights.h5").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    manifest = {"verified": True, "converted_sha256": digest, "file_name": "x.pth"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert verify_entry(entry) == ("ok", str(folder / "model.weights.h5"))
    unverified = {**manifest, "verified": False, "sha256": "ab" * 32}
    (folder / "manifest.json").write_text(json.dumps(unverified))
    assert verify_entry(entry) == ("unverified", f"imported with --unverified from x.pth "
                                                 f"(SHA-256 {'ab' * 32})")
    del unverified["verified"]  # a manifest that does not say: never taken as verified
    (folder / "manifest.json").write_text(json.dumps(unverified))
    assert verify_entry(entry)[0] == "unverified"
    (folder / "model.weights.h5").write_bytes(b"weighty")  # another file, same length hash
    status, detail = verify_entry(entry)
    assert status == "corrupt" and f"expected SHA-256 {digest}, found " in detail
    # A weights file the package should ship but does not: missing, not a crash.
    shipped = WeightsEntry(
        model="lenet5", name="gone", description="d", dataset="mnist", file_name="gone.h5",
        checksum="0" * 64, checksum_kind="sha256", license="l", source="s", converter="zoo",
        preprocessing=IMAGENET_MEAN_STD, classifier=True, packaged="gone.weights.h5")
    assert verify_entry(shipped)[0] == "missing"


def test_a_flipped_byte_in_an_imported_file_reads_corrupt(tiny_entry):
    from zoo.weights.store import entry_dir, import_weights, read_manifest, verify_entry

    entry, path = tiny_entry
    import_weights(path)
    stored = entry_dir(entry) / "model.weights.h5"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    status, detail = verify_entry(entry)
    assert status == "corrupt"
    assert f"expected SHA-256 {read_manifest(entry)['converted_sha256']}" in detail
    result = CliRunner().invoke(main, ["weights", "verify"])
    assert result.exit_code == 1 and f"corrupt    {entry.key}" in result.output
    # Only the entry's own file matches it: another file's 64-digit SHA-256 does not.
    other = hashlib.sha256(b"another file").hexdigest()
    assert entry.matches(entry.checksum, "") and not entry.matches(other, "")


def test_altered_file_is_refused_with_both_hashes_unless_unverified(tiny_entry, tmp_path):
    from zoo.weights.store import WeightsImportError, entry_dir, import_weights, read_manifest

    entry, path = tiny_entry
    altered = tmp_path / "x" / path.name
    altered.parent.mkdir()
    state = _torchvision_vgg_state()
    save_zip(state, altered)
    with pytest.raises(WeightsImportError, match=f"expected SHA-256 {entry.checksum}, found"):
        import_weights(altered)
    assert not entry_dir(entry).exists()
    result = import_weights(altered, unverified=True)
    assert not result.verified and read_manifest(entry)["verified"] is False
    rows = CliRunner().invoke(main, ["weights", "list", "vgg11"]).output
    assert "vgg11:tiny" in rows and "UNVERIFIED" in rows


def test_unknown_file_needs_unverified_and_an_entry(tiny_entry, tmp_path):
    from zoo.weights.store import WeightsImportError, import_weights

    stray = save_zip(_torchvision_vgg_state(), tmp_path / "stray.pth")
    with pytest.raises(WeightsImportError, match="matches no known weights file"):
        import_weights(stray)
    assert not import_weights(stray, unverified=True, as_key="vgg11:tiny").verified


def test_missing_weights_name_entry_file_and_import_command(tiny_entry):
    from zoo.weights.load import WeightsNotImportedError

    entry, _ = tiny_entry
    with pytest.raises(WeightsNotImportedError, match=rf"{entry.file_name}.*zoo weights import"):
        zoo.build("vgg11", weights="tiny")
    result = CliRunner().invoke(main, ["weights", "info", "vgg11:nope"])
    assert result.exit_code == 1 and "tiny" in result.output


def test_cli_import_refuses_unknown_file_in_one_line(tmp_path):
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"not weights")
    result = CliRunner().invoke(main, ["weights", "import", str(bogus)])
    assert result.exit_code == 1
    assert "matches no known weights file" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_every_entry_names_a_buildable_model_and_a_valid_checksum():
    from zoo.weights.applications import APPLICATION_BUILDERS

    entries = catalog.all_entries()
    assert {e.key for e in entries} >= {"vgg11:torchvision", "vgg13:torchvision",
                                        "vgg16:torchvision", "vgg19:torchvision",
                                        "alexnet_torchvision:torchvision", "vgg16:keras",
                                        "vgg19:keras", "MobileNetV2:torchvision"}
    for entry in entries:
        assert entry.model in zoo.list_models() or entry.model in APPLICATION_BUILDERS
        if entry.checksum_kind == "sha256_prefix":
            assert entry.file_name.split("-")[-1].startswith(entry.checksum)


def test_packaged_lenet5_mnist_loads_offline_and_reads_unseen_digits():
    from zoo.data.dataset import fit_images
    from zoo.data.load import load_digits
    from zoo.weights.store import verify_entry

    entry = catalog.get_entry("lenet5", "mnist")
    assert verify_entry(entry)[0] == "ok"  # the shipped file matches its recorded SHA-256
    model = zoo.build("lenet5", weights="mnist")  # empty ZOO_HOME: nothing imported
    digits = load_digits()
    x = fit_images(digits.x_test, (32, 32, 1)).astype("float32") / 255.0
    accuracy = (np.asarray(model(x)).argmax(axis=1) == digits.y_test).mean()
    assert accuracy > 0.8  # measured 0.885 on scans it never saw; untrained: ~0.1



def test_packaged_vgg_small_fashion_mnist_loads_offline_and_reads_clothes():
    """The shipped file on 100 official Fashion-MNIST test images that ship with the tests
    (the first 10 of each class, tests/data/; Fashion-MNIST is MIT-licensed)."""
    from pathlib import Path

    from zoo.data.dataset import fit_images
    from zoo.weights.preprocess import class_names
    from zoo.weights.store import verify_entry

    entry = catalog.get_entry("vgg_small", "fashion_mnist")
    assert verify_entry(entry)[0] == "ok"  # the shipped file matches its recorded SHA-256
    assert class_names(entry)[0] == "T-shirt/top" and class_names(entry)[9] == "Ankle boot"
    model = zoo.build("vgg_small", weights="fashion_mnist")  # empty ZOO_HOME: nothing imported
    sample = np.load(Path(__file__).parent / "data" / "fashion_mnist_test_100.npz")
    x = fit_images(sample["x"], (32, 32, 1)).astype("float32") / 255.0
    accuracy = (np.asarray(model(x, training=False)).argmax(axis=1) == sample["y"]).mean()
    assert accuracy > 0.8  # the whole test split: 0.9347; untrained: ~0.1

def test_transfer_and_embed_take_an_entry_and_record_it(tiny_entry):
    from recipes.transfer import load_source
    from zoo.weights.backbone import feature_extractor, pretrained_backbone
    from zoo.weights.load import WeightsNotImportedError
    from zoo.weights.store import import_weights

    entry, path = tiny_entry
    with pytest.raises(WeightsNotImportedError, match="zoo weights import"):
        load_source("vgg11", weights="imagenet", input_shape=(16, 16, 3))
    import_weights(path)
    source = load_source("vgg11", weights="imagenet", input_shape=(16, 16, 3))
    assert source.kind == "pretrained" and source.weights["entry"] == "vgg11:tiny"
    assert source.weights["verified"] is True
    assert [type(layer).__name__ for layer in source.preprocess] == ["Normalization"]
    state = read_state_dict(path)
    np.testing.assert_allclose(source.base.get_layer("block1_conv1").get_weights()[0],
                               convert.conv_kernel_oihw_to_hwio(state["features.0.weight"]))
    extractor = feature_extractor(pretrained_backbone("vgg11", "tiny",
                                                      images_shape=(16, 16, 1)))
    assert extractor.input_shape == (None, 32, 32, 3)  # padded to 32x32, RGB
    assert extractor.output_shape == (None, 6)  # headless: avg-pooled last conv block


def test_list_and_show_say_which_weights_exist_and_are_present(tiny_entry, tmp_path):
    import json

    from zoo.weights.store import import_weights

    runner = CliRunner()
    rows = {r["name"]: r for r in json.loads(runner.invoke(main, ["list", "--json"]).output)}
    assert {"name": "mnist", "dataset": "mnist", "present": True} in rows["lenet5"]["weights"]
    assert {w["name"] for w in rows["vgg16"]["weights"]} >= {"torchvision", "keras", "lpips"}
    entry, _ = tiny_entry
    other = save_zip(_torchvision_vgg_state(), tmp_path / "other.pth")  # not the official file
    import_weights(other, unverified=True, as_key=entry.key)
    shown = runner.invoke(main, ["show", "vgg11", "--weights", "tiny"])
    assert shown.exit_code == 0, shown.output
    assert "vgg11:tiny" in shown.output and "UNVERIFIED" in shown.output
    missing = runner.invoke(main, ["show", "vgg16", "--weights", "torchvision"])
    assert missing.exit_code == 1 and "zoo weights import" in missing.output


def test_unverified_weights_are_recorded_in_the_transfer_run(tiny_entry, tmp_path):
    import json

    from recipes.transfer import TransferSettings, load_source, transfer
    from zoo.data.load import load_digits
    from zoo.weights.store import import_weights

    entry, _ = tiny_entry
    other = save_zip(_torchvision_vgg_state(), tmp_path / "other.pth")
    import_weights(other, unverified=True, as_key=entry.key)
    data = load_digits().subset(per_class=2)
    source = load_source("vgg11", weights="tiny", input_shape=(16, 16, 3), target=data)
    result = transfer(source, data, TransferSettings(strategy="head", head_epochs=1,
                                                     out=str(tmp_path / "run")), verbose=0)
    recorded = json.loads((result.run_dir / "config.json").read_text())["weights"]
    assert recorded["entry"] == "vgg11:tiny" and recorded["verified"] is False


def test_export_manifest_and_show_carry_the_weights_a_run_started_from(tiny_entry, tmp_path):
    """A verified entry and an --unverified import: the entry, the source file's SHA-256 and
    the verified flag reach the run, the export manifest on disk and `zoo show RUN`."""
    import json

    from recipes.transfer import TransferSettings, load_source, transfer
    from zoo.data.load import load_digits
    from zoo.deploy.export import export_model
    from zoo.deploy.serving import MANIFEST_FILE
    from zoo.weights.store import import_weights

    entry, official = tiny_entry
    altered = save_zip(_torchvision_vgg_state(), tmp_path / "altered.pth")
    data = load_digits().subset(per_class=2)
    for file, verified in ((official, True), (altered, False)):
        imported = import_weights(file, unverified=not verified, as_key=entry.key)
        assert imported.verified is verified
        source = load_source("vgg11", weights="tiny", input_shape=(16, 16, 3), target=data)
        run = transfer(source, data, TransferSettings(strategy="head", head_epochs=1,
                                                      out=str(tmp_path / f"run-{verified}")),
                       verbose=0).run_dir
        export = export_model(run, formats=["keras"], out=tmp_path / "exports",
                              name=f"tiny-{str(verified).lower()}")
        on_disk = json.loads((export.path / MANIFEST_FILE).read_text())
        recorded = on_disk["training"]["weights"]
        assert recorded["entry"] == "vgg11:tiny" and recorded["verified"] is verified
        assert recorded["source_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
        shown = CliRunner().invoke(main, ["show", str(run)])
        assert shown.exit_code == 0, shown.output
        line = shown.output.strip().splitlines()[-1]
        assert line.startswith("started from weights: vgg11:tiny")
        assert ("UNVERIFIED" in line) is not verified and imported.sha256 in line
