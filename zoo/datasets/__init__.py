"""Known data sets (MNIST, Fashion-MNIST, CIFAR-10/100): catalog, import, cache, loading.

Submodules import NumPy only; nothing here imports TensorFlow or Keras.
"""

from zoo.datasets.catalog import CATALOG, EMBEDDED, DatasetSpec, get_spec

__all__ = ["CATALOG", "EMBEDDED", "DatasetSpec", "get_spec"]
