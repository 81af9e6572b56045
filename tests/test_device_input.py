"""The input path without TensorFlow (GPU machines): uint8 batches cast and scaled on the
device give the numbers that float32 batches from the host gave, with and without
augmentation. Runs tests/jax_device_input.py under KERAS_BACKEND=jax in its own process, with
TensorFlow hidden as on those machines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import with_quick_xla_compile

ROOT = Path(__file__).resolve().parents[1]
# One float32 ulp at 1.0: XLA turns the division by 255 into a multiplication by 1/255 (as
# the exported model's Rescaling layer does), which differs from NumPy's division in the
# last bit for about half of the 256 grey levels.
ULP = 2.0**-23


@pytest.fixture(scope="module")
def findings(python_without_tensorflow) -> dict:
    python, env = python_without_tensorflow
    done = subprocess.run([*python, "-m", "tests.jax_device_input"],
                          env=with_quick_xla_compile(env),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_images_stay_uint8_on_the_host_and_reach_keras_as_device_floats(findings):
    assert findings["backend"] == "jax"
    # The path is chosen by TensorFlow's absence, and nothing imported it on the way.
    assert not findings["tensorflow_installed"] and not findings["tensorflow_loaded"]
    batch = findings["first_batch"]
    assert batch["held_dtype"] == "uint8"  # no float32 copy of the whole set
    assert batch["batch_type_is_jax_array"] and batch["batch_dtype"] == "float32"
    assert batch["batch_device"].startswith("cpu")  # JAX's default device here
    assert batch["max_abs_diff_to_host_float"] <= ULP


@pytest.mark.parametrize("case", ["plain", "augment"])
def test_device_cast_trains_like_host_float_feeding(findings, case):
    run = findings[case]
    # Every training, validation and test batch went through the device cast, as uint8.
    assert run["device_casts"] > 0 and run["cast_input_dtypes"] == ["uint8"]
    assert run["host_casts"] == 0  # the reference path really fed host floats
    np.testing.assert_allclose(run["device_losses"], run["host_losses"], rtol=1e-5)
    assert run["max_weight_diff"] < 1e-5
    assert run["device_losses"][1] < run["device_losses"][0]  # and it trained
