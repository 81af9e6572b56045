"""Benchmarks beside the package: the hand-written Keras and PyTorch peers of the zoo's models,
the scripts that time the zoo against them, and their results. Nothing in zoo, recipes or tuning
imports this package; it imports them. Run its scripts from a checkout
(``python benchmarks/NAME.py``); each puts the checkout on ``sys.path`` itself.
"""
