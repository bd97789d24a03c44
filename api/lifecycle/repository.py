"""Deleting rows in PostgreSQL: the statements in ``queries.sql``, run with asyncpg."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg

from api.auth.caller import workspace_filter
from api.db.database import Connection, affected_rows
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

# Table → statement, children before parents; each takes the experiment's id.
EXPERIMENT_TABLES = {
    "assignments": "delete_assignments",
    "holdout_outcomes": "delete_outcomes",
    "holdout_observations": "delete_observations",
    "holdout_observation_history": "delete_observation_history",
    "channel_spend": "delete_channel_spend",
    "sequential_looks": "delete_sequential_looks",
    "sequential_mixing_variances": "delete_sequential_mixing_variances",
    "kept_answers": "delete_kept_answers",
    "experiment_revisions": "delete_experiment_revisions",
    "experiment_channels": "delete_experiment_channels",
}
DATASET_TABLES = {
    "geo_observations": "delete_geo_observations",
    "kept_answers": "delete_dataset_kept_answers",
    "geo_dataset_versions": "delete_geo_dataset_versions",
    "jobs": "delete_design_jobs",
    "geo_market_selections": "delete_market_selections",
    "geo_matched_pair_designs": "delete_matched_pair_designs",
}


class DeletionRepository:
    """Deletes an experiment's or a dataset's rows (and locks a dataset); callers own the transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def delete_experiment(self, experiment_id: UUID) -> dict[str, int]:
        counts = {
            table: affected_rows(await self.connection.execute(QUERIES[query], experiment_id))
            for table, query in EXPERIMENT_TABLES.items()
        }
        counts["jobs"] = affected_rows(
            await self.connection.execute(QUERIES["delete_jobs_about"], f"/v1/experiments/{experiment_id}/")
        )
        counts["experiments"] = affected_rows(
            await self.connection.execute(QUERIES["delete_experiment"], experiment_id)
        )
        return counts

    async def lock_dataset(self, dataset_id: UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.connection.fetchrow(
            QUERIES["lock_dataset"], dataset_id, workspace_filter()
        )
        return row

    async def experiments_on_dataset(self, dataset_id: UUID) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.connection.fetch(QUERIES["experiments_on_dataset"], dataset_id)
        return rows

    async def delete_dataset(self, dataset_id: UUID) -> dict[str, int]:
        counts = {
            table: affected_rows(await self.connection.execute(QUERIES[query], dataset_id))
            for table, query in DATASET_TABLES.items()
        }
        counts["jobs"] += affected_rows(
            await self.connection.execute(QUERIES["delete_jobs_about"], f"/v1/geo/datasets/{dataset_id}/")
        )
        counts["geo_datasets"] = affected_rows(await self.connection.execute(QUERIES["delete_dataset"], dataset_id))
        return counts
