"""Revisions of what an experiment's results read: a finished answer is kept until they change.

A holdout experiment's data revision is bumped by every write to its assignments, outcomes, observations or
spend, in the writing transaction (:func:`bump_data_revision`); its settings change its row's
``updated_at``. A geo experiment reads its dataset: :func:`geo_data_revision` (its latest version) and
:func:`geo_version_revision` (a given one) are the one place that says which state of a dataset an answer was
computed from. A version never changes once written, so an answer at a version is never stale.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from api.db.database import Connection
from api.db.sql_queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("revisions.sql"))


async def bump_data_revision(connection: Connection, experiment_id: UUID) -> None:
    """A write to the experiment's data (call it inside the writing transaction, once the data is written)."""
    await connection.execute(QUERIES["bump_data_revision"], experiment_id)


async def experiment_revision(connection: Connection, experiment_id: UUID) -> str:
    """The revision of the experiment's settings and data (``""`` for an unknown experiment)."""
    revision: str | None = await connection.fetchval(QUERIES["experiment_revision"], experiment_id)
    return revision or ""


async def geo_data_revision(connection: Connection, dataset_id: UUID) -> str:
    """The state of a geo dataset that an answer reads: its id and latest version (``""`` when gone)."""
    marker: str | None = await connection.fetchval(QUERIES["geo_dataset_marker"], dataset_id)
    return marker or ""


def geo_version_revision(dataset_id: UUID, version: int) -> str:
    """The state of a geo dataset at ``version`` (what :func:`geo_data_revision` says of its latest)."""
    return f"{dataset_id}:v{version}"
