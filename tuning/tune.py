"""`zoo tune`'s one entry: a search in this process, or a chief with worker processes.

``run_search(plan)`` checks the plan, then runs it in this process (``tuning.search``: alone, or
as one chief or worker of a search spread over machines) or, with ``plan.workers``, as
keras-tuner's chief of that many worker processes on this machine (``tuning.workers``, each
worker running ``tuning.search``). Both write the same results into ``plan.out``.
"""

from __future__ import annotations

from typing import Callable

from tuning.records import SearchPlan, SearchResult
from tuning.search import (
    check_search_folder,
    floored_outputs_noted,
    report_finished_search,
    search_here,
    validate_plan,
)
from tuning.workers import search_with_workers
from zoo.core.locks import folder_lock

__all__ = ["SearchPlan", "SearchResult", "run_search"]


def run_search(plan: SearchPlan, echo: Callable[[str], None] = print) -> SearchResult:
    """Run (or resume) the search described by ``plan`` and write its results.

    Args:
        plan: the model, data set, algorithm, trial budget, search space overrides and
            distribution (``SearchPlan``); results go to ``plan.out_dir``. With
            ``plan.workers``, this process serves keras-tuner's chief oracle and that many
            worker processes train the trials (``tuning.workers``).
        echo: called with each progress line.

    Returns:
        The trials table, the best trial and, unless ``plan.retrain`` is off, the run
        directory of the best configuration retrained with ``zoo.training.train.train``.
    """
    validate_plan(plan)
    with floored_outputs_noted(echo):
        if plan.workers is not None:
            # The chief holds the search folder (zoo.core.locks); its workers write trials
            # into it for it and take no lock.
            with folder_lock(plan.out_dir, what="search folder"):
                earlier = check_search_folder(plan)
                result = search_with_workers(plan, echo)
            report_finished_search(plan, earlier, result, echo)
            return result
        return search_here(plan, echo)
