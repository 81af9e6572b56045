"""`zoo bench`: training and inference speed of zoo models against hand-written peers.

``run`` measures (``benchmark``), ``report`` writes the JSON and Markdown results,
``keras_peer`` and ``torch_models`` hold the same models written out by hand in plain Keras and
PyTorch, the way a user would without the zoo, and ``torch_peer`` trains the PyTorch ones.
``versus_torch`` (`zoo bench --versus-torch`) times the zoo against its PyTorch peer on a GPU,
each side in a process of its own (``zoo_timing`` and ``torch_peer``), talking through the job
and result files of ``peer_jobs``.
"""

from zoo.bench.report import default_report_path, format_markdown, write_report
from zoo.bench.run import BenchError, BenchSettings, benchmark, format_row, measure_matmul_peak

__all__ = [
    "BenchError", "BenchSettings", "benchmark", "default_report_path", "format_markdown",
    "format_row", "measure_matmul_peak", "write_report",
]
