"""`zoo bench`: training and inference speed of the zoo's own models.

``run`` measures (``benchmark``: training through ``timing``'s clock, ``inference``, the
``machine``'s facts and matmul peak), ``report`` writes the JSON and Markdown results. The
hand-written Keras and PyTorch peers the zoo is compared with live in benchmarks/, beside the
package, and are never imported by it.
"""

from zoo.bench.machine import measure_matmul_peak
from zoo.bench.report import default_report_path, format_markdown, write_report
from zoo.bench.run import BenchError, BenchSettings, benchmark, format_row

__all__ = [
    "BenchError", "BenchSettings", "benchmark", "default_report_path", "format_markdown",
    "format_row", "measure_matmul_peak", "write_report",
]
