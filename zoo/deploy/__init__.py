"""Export, serving signatures and prediction from a finished run."""
