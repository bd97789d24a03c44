"""Deleting an experiment or a geo dataset: every row, one transaction, one audit event left behind."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from api.audit import service as audit
from api.experiments.repository import ExperimentRepository
from api.http.errors import Conflict, NotFound
from api.idempotency.repository import forget_design_job_replies, forget_replies_about
from api.lifecycle.repository import DeletionRepository
from api.lifecycle.schemas import Deletion


async def delete_experiment(pool: asyncpg.Pool, experiment_id: UUID) -> Deletion:
    """Delete an experiment that is not running, with its assignments, outcomes, observations and jobs."""
    async with pool.acquire() as connection, connection.transaction():
        experiments = ExperimentRepository(connection)
        experiment = await experiments.get_for_update(experiment_id)
        if experiment is None:
            raise NotFound(f"No experiment with id {experiment_id}")
        await experiments.lock_results_data(experiment_id)  # no upload is half-way
        if experiment["status"] == "running":
            raise Conflict(
                f"Experiment {experiment_id} ({experiment['name']!r}) is running; stop it before deleting it",
                [("status", "running")],
            )
        await forget_replies_about(connection, f"/v1/experiments/{experiment_id}")
        counts = await DeletionRepository(connection).delete_experiment(experiment_id)
        details = {"kind": experiment["kind"], "name": experiment["name"], "status": experiment["status"]}
        await audit.record(connection, experiment_id, "deleted", {**details, "rows_deleted": counts})
    return Deletion(id=experiment_id, kind="experiment", name=experiment["name"], rows_deleted=counts)


async def delete_geo_dataset(pool: asyncpg.Pool, dataset_id: UUID) -> Deletion:
    """Delete a geo dataset and its panel unless a running experiment reads it (409 naming the experiment)."""
    async with pool.acquire() as connection, connection.transaction():
        repository = DeletionRepository(connection)
        dataset = await repository.lock_dataset(dataset_id)
        if dataset is None:
            raise NotFound(f"No geo dataset with id {dataset_id}")
        await ExperimentRepository(connection).lock_geo_dataset_schedule(dataset_id)  # no experiment starts on it
        dependents = await repository.experiments_on_dataset(dataset_id)
        running = [row for row in dependents if row["status"] == "running"]
        if running:
            first = running[0]
            raise Conflict(
                f"Geo dataset {dataset_id} is read by running experiment {first['id']} ({first['name']!r}); "
                "stop it before deleting the dataset",
                [("experiment_id", str(first["id"]))],
            )
        await forget_replies_about(connection, f"/v1/geo/datasets/{dataset_id}")
        await forget_design_job_replies(connection, dataset_id)
        counts = await repository.delete_dataset(dataset_id)
        left = [row["id"] for row in dependents]
        await audit.record_dataset_event(
            connection,
            dataset_id,
            "deleted",
            {"name": dataset["name"], "rows_deleted": counts, "experiments_left": [str(i) for i in left]},
        )
    return Deletion(id=dataset_id, kind="geo_dataset", name=dataset["name"], rows_deleted=counts, experiments_left=left)
