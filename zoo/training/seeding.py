"""One seed for a run: Keras' random generators and, on TensorFlow, op determinism."""

from __future__ import annotations


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and the backend (``keras.utils.set_random_seed``) and, on TensorFlow,
    switch op determinism on or off.

    The determinism switch is process-wide and set both ways, so one run's choice does not
    leak into the next (a deterministic run followed by an XLA one would fail: XLA has no
    deterministic max-pool gradient).
    """
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        from zoo.training.tensorflow_compat import set_op_determinism

        set_op_determinism(deterministic)
