"""Data: the split Dataset record (dataset), its sources (load: digits, imported official
files, tfds, image folders), their cache and the training batches (batches).

Submodules are imported by name (``from zoo.data.load import load_dataset``); this package
imports nothing, so that loading one of them never pulls in the others.
"""
