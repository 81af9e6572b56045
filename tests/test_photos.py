"""Issue 30, a practitioner's own photos: grey images on ImageNet weights, booleans as typed in
a shell, one weights name everywhere, imbalanced classes, costs said before they are paid."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

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
