"""The tasks ``counterfact worker`` runs: every resource's queued work, assembled in one place.

The worker's counterpart of :mod:`api.app`: ``api.jobs`` runs tasks by name and names no resource.
"""

from __future__ import annotations

from typing import get_args

from api.calibration.schemas import CalibrationExport
from api.calibration.service import CALIBRATION_TASK, calibration_task
from api.geo_design.tasks import register_geo_design_tasks
from api.geo_pairs.tasks import register_matched_pairs_tasks
from api.jobs.tasks import TaskRegistry
from api.results.service import RESULTS_TASK, ExperimentResults, results_task


def task_registry() -> TaskRegistry:
    """Every task a worker can run, with the types of their answers (in the order the document lists them)."""
    registry = TaskRegistry()
    registry.job(RESULTS_TASK, results_task, answers=get_args(ExperimentResults))
    register_geo_design_tasks(registry)
    register_matched_pairs_tasks(registry)
    registry.job(CALIBRATION_TASK, calibration_task, answers=get_args(CalibrationExport))
    return registry
