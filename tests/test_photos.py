"""Issue 30, a practitioner's own photos: grey images on ImageNet weights, booleans as typed in
a shell, one weights name everywhere, imbalanced classes, costs said before they are paid."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_weights import tiny_entry  # noqa: F401 (a fixture)

from zoo.cli import main


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- booleans


@pytest.mark.parametrize("spelling", ["false", "FALSE", "0", "no", "No"])
def test_set_takes_the_boolean_spellings_a_shell_user_types(spelling):
    full = json.loads(_cli("show", "lenet5", "--json").output)["total_params"]
    result = _cli("show", "lenet5", "--set", f"include_top={spelling}", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_params"] < full  # the top was left out


def test_a_word_that_is_no_boolean_is_refused_in_one_line():
    result = _cli("show", "lenet5", "--set", "include_top=maybe")
    assert result.exit_code == 1
    assert "true or false" in result.output and len(result.output.strip().splitlines()) == 1


# ---------------------------------------------------------------- one weights name everywhere


def test_every_command_takes_the_same_weights_names(tiny_entry, tmp_path, monkeypatch):  # noqa: F811
    """'MODEL:imagenet' and 'MODEL:ENTRY' work wherever weights are named, as --weights
    imagenet does in zoo transfer (classify, info, show, build; embed, neighbors and transfer
    resolve them as show does)."""
    import dataclasses

    import numpy as np
    from PIL import Image

    import zoo
    from zoo.weights import catalog
    from zoo.weights.store import import_weights

    entry, path = tiny_entry
    entry = dataclasses.replace(entry, classes="imagenet")  # its 3 outputs: ImageNet's first 3
    monkeypatch.setattr(catalog, "application_entries", lambda: (entry,))
    import_weights(path)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((12, 12, 3), 128, np.uint8)).save(photo)
    classified = _cli("weights", "classify", "vgg11:imagenet", str(photo))
    assert classified.exit_code == 0, classified.output
    assert classified.output.startswith(f"{photo}: ")
    assert _cli("weights", "info", "vgg11:imagenet").output.startswith("vgg11:tiny:")
    for name in ("imagenet", "tiny", "vgg11:tiny"):
        shown = _cli("show", "vgg11", "--weights", name)
        assert shown.exit_code == 0 and "loaded:  vgg11:tiny" in shown.output, shown.output
    assert zoo.build("vgg11", weights="vgg11:tiny").count_params() > 0
    wrong = _cli("show", "vgg11", "--weights", "lenet5:mnist")
    assert wrong.exit_code == 1 and "not of vgg11" in wrong.output
