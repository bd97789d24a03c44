"""The tasks ``counterfact worker`` runs: every resource's queued work, assembled in one place.

The worker's counterpart of :mod:`api.app`: ``api.jobs`` runs tasks by name and names no resource.
"""

from __future__ import annotations

from api.calibration.service import CALIBRATION_TASK, calibration_task
from api.geo_design.tasks import register_geo_design_tasks
from api.geo_pairs.tasks import register_matched_pairs_tasks
from api.jobs.tasks import TaskRegistry
from api.results.service import RESULTS_TASK, results_task


def task_registry() -> TaskRegistry:
    """Every task a worker can run."""
    registry = TaskRegistry()
    registry.job(RESULTS_TASK, results_task)
    registry.job(CALIBRATION_TASK, calibration_task)
    register_geo_design_tasks(registry)
    register_matched_pairs_tasks(registry)
    return registry
