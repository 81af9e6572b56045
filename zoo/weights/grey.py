"""RGB weights on grey images: the first convolution summed over its colour channels.

timm's ``adapt_input_conv`` makes a 1-channel model from RGB weights by summing the first
convolution's kernels over the input channels. That is exact for a grey image fed as three
equal channels only when every channel is normalised alike; ImageNet weights expect per-channel
normalisation ((x - mean_c) / std_c, or caffe's BGR minus per-channel means). A grey image g,
repeated and normalised, reaches the first convolution as (g - m_c) / s_c, so

    sum_c W_c (g - m_c) / s_c + b  =  W' (g - m) / s + b'
    with W' = s * sum_c W_c / s_c  and  b' = b + sum_{taps, c} W_c (m - m_c) / s_c

for any single-channel normalisation (m, s) of the grey model: exact wherever the kernel sees
no padding. At the border the padded zeros stand for g = m_c in the RGB model and g = m in the
grey one; m = sum_c(m_c / s_c) / sum_c(1 / s_c) makes the difference vanish for kernels
that weigh the three channels alike, and keeps it small otherwise (tests/test_photos.py states
the tolerance). A first convolution without a bias (MobileNetV2's Conv1, followed by batch
norm) takes b' - b as a shift of the batch norm's moving mean, exact in inference mode, which
is how transfer runs the base's batch norm.

Repeating the grey channel instead (a 3-channel model fed g, g, g) is exact but keeps the data
three times as large in memory and the first convolution three times as costly; the zoo sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.weights.entry import Preprocessing


def channel_statistics(preprocessing: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """(m_c, s_c) per input channel of the first convolution, in [0, 1] image units: the
    channel it sees is (x - m_c) / s_c of the [0, 1] image x."""
    if preprocessing.kind == "mean_std":
        return np.asarray(preprocessing.mean, np.float64), np.asarray(preprocessing.std,
                                                                        np.float64)
    if preprocessing.kind == "caffe":  # 255 x - mean (already in BGR, the kernel's order)
        return np.asarray(preprocessing.mean, np.float64) / 255.0, np.full(3, 1 / 255.0)
    return np.zeros(3), np.ones(3)  # x / 255 from uint8: the [0, 1] image itself


def grey_statistics(preprocessing: Preprocessing) -> tuple[float, float]:
    """(m, s) of the grey model's single-channel normalisation (see the module's note)."""
    means, stds = channel_statistics(preprocessing)
    mean = float(np.sum(means / stds) / np.sum(1 / stds))
    std = float(len(stds) / np.sum(1 / stds))
    return mean, std


def grey_preprocessing_layers(preprocessing: Preprocessing, name: str = "pretrained"
                              ) -> list[Any]:
    """The layers that turn [0, 1] grey images into what the adapted convolution expects."""
    import keras

    mean, std = grey_statistics(preprocessing)
    if mean == 0.0 and std == 1.0:
        return []
    return [keras.layers.Normalization(mean=[mean], variance=[std ** 2],
                                       name=f"{name}_grey_normalize")]


def adapt_first_kernel(kernel: np.ndarray, preprocessing: Preprocessing
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(the grey kernel (kh, kw, 1, out), the shift to add to the bias) for an RGB kernel
    (kh, kw, 3, out) that expects ``preprocessing``."""
    means, stds = channel_statistics(preprocessing)
    mean, std = grey_statistics(preprocessing)
    weights = kernel.astype(np.float64)
    grey = std * np.sum(weights / stds[None, None, :, None], axis=2, keepdims=True)
    shift = np.sum(weights * ((mean - means) / stds)[None, None, :, None], axis=(0, 1, 2))
    return grey.astype(kernel.dtype), shift.astype(kernel.dtype)


def adapt_layers(arrays: dict[str, list[np.ndarray]], layers: list[Any], first: int,
                 preprocessing: Preprocessing) -> None:
    """Replace, in ``arrays``, the RGB weights of ``layers[first]`` (a convolution) by grey
    ones; the bias shift goes to its bias, or to the moving mean of the batch norm after it."""
    layer = layers[first]
    kernel, shift = adapt_first_kernel(arrays[layer.name][0], preprocessing)
    if len(arrays[layer.name]) > 1:
        arrays[layer.name] = [kernel, arrays[layer.name][1] + shift]
        return
    after = layers[first + 1] if first + 1 < len(layers) else None
    if after is None or type(after).__name__ != "BatchNormalization":
        raise ValueError(f"cannot adapt {layer.name!r} to grey input: it has no bias and no "
                         f"batch norm after it to take the normalisation's shift")
    gamma, beta, moving_mean, moving_variance = arrays[after.name]
    arrays[layer.name] = [kernel]
    arrays[after.name] = [gamma, beta, moving_mean - shift, moving_variance]
