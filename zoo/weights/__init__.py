"""Pretrained weights: entries as data beside the builders, converters, an offline cache.

``zoo.build(name, weights=...)`` loads them; `zoo weights` lists, imports, describes and
verifies them. Importing this package does not import Keras.
"""
