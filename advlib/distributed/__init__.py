"""Evaluation beyond one process: per-sample results, a results directory, the Ray engine.

``advlib.evaluate(model, data, attacks, epsilons, engine="ray", results="DIR", workers=4)``
runs the evaluation on Ray Data workers (``pip install 'advlib[ray]'``); this package holds
the pieces. Importing it imports neither Ray nor pyarrow.

* :class:`ResultTable`: per-sample results of some samples; ``concat`` and ``to_report``.
* :class:`ResultsDir` / :func:`read_results`: a results directory (config + one Parquet file per
  block), as ``evaluate(..., results=DIR)`` writes it; ``RobustnessReport.from_results(DIR)``.
* :class:`ModelFactory`: a model built where it is needed, from a function or
  ``"module:function"``.
* :class:`RayOptions`, :class:`BlockWorker`, :class:`BlockError`, :data:`BLOCK_SIZE`: the Ray
  engine (:mod:`advlib.distributed.engine`).
"""

from ..evaluation.factory import ModelFactory
from ..evaluation.results import ResultTable
from ..evaluation.store import ResultsDir, read_results
from .engine import BLOCK_SIZE, BlockError, BlockWorker, RayOptions

__all__ = [
    "BLOCK_SIZE",
    "BlockError",
    "BlockWorker",
    "ModelFactory",
    "RayOptions",
    "ResultTable",
    "ResultsDir",
    "read_results",
]
