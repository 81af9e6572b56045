"""The bottom layer: the model registry, geometry, names, hyperparameter types, the layer
table and run-folder files. Imports nothing else of the zoo."""
