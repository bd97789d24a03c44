"""Rules of the experiments resource: creation, idempotent retries, the status life cycle."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID, uuid4

import asyncpg
import msgspec
from msgspec import UNSET

from api.audit import service as audit
from api.auth.caller import current_key_id
from api.db.database import Connection
from api.experiments.cells import check_cells, check_cells_in_dataset, stored_cells, treated_markets
from api.experiments.holdout_dates import (
    actual_period,
    check_actual_period,
    check_test_period,
    holdout_test_dates,
    utc_today,
)
from api.experiments.repository import ExperimentRepository, Row
from api.experiments.schemas import (
    ChannelSpec,
    DesignSource,
    Experiment,
    ExperimentCreate,
    ExperimentPage,
    ExperimentPatch,
    GeoExperiment,
    GeoExperimentCreate,
    HoldoutExperiment,
    HoldoutExperimentCreate,
    Period,
)
from api.geo.coverage import period_coverage
from api.geo.repository import GeoRepository
from api.geo.service import canonical_geo_design, validate_geo_design
from api.http.cursors import page_start, split_page
from api.http.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound, invalid_field
from api.idempotency.repository import KEY_REUSED_REASON, key_names_a_stored_request
from stats.geo.trimmed_match import trimmed_per_side

ALLOWED_TRANSITIONS = frozenset({("draft", "running"), ("running", "stopped")})
HOLDOUT_DESIGN_FIELDS = ("metric", "channels", "alpha", "planned_units", "test_period")
GEO_DESIGN_FIELDS = (
    "channel",
    "treatment_markets",
    "pre_period",
    "test_period",
    "spend",
    "exclude_from_controls",
    "test_type",
    "spend_change",
    "cooldown_period",
    "cells",
    "trim_rate",
    "dataset_id",
)
SPEND_SIGN = {"holdback": -1.0, "go-dark": -1.0, "heavy-up": 1.0}


def _validate_channels(channels: list[ChannelSpec], prefix: str = "channels") -> None:
    seen: set[str] = set()
    for index, channel in enumerate(channels):
        if channel.name in seen:
            raise invalid_field(f"{prefix}[{index}].name", f"channel {channel.name!r} appears twice")
        seen.add(channel.name)


def _validate_periods(pre: Period, test: Period) -> None:
    if pre.end < pre.start:
        raise invalid_field("pre_period.end", "ends before it starts")
    if test.end < test.start:
        raise invalid_field("test_period.end", "ends before it starts")
    if test.start <= pre.end:
        raise invalid_field("test_period.start", "must come after the pre-period ends")


def _validate_timing_and_type(design: dict[str, Any]) -> None:
    """400 naming the field for a cool-down that does not follow the test, or a test type whose spend change
    per market is missing, names a market that is not treated, or has the wrong sign for the type."""
    _validate_cooldown(design)
    test_type, change = design.get("test_type"), design.get("spend_change")
    if test_type is None and change is None:
        return
    if test_type is None:
        raise invalid_field("test_type", "is required with spend_change: holdback, go-dark or heavy-up")
    if change is None:
        raise invalid_field("spend_change", f"is required with test_type {test_type!r}: the spend change per market")
    _validate_spend_given_once(design)
    _validate_change_markets(change, design["treatment_markets"])
    _validate_change_signs(test_type, change)


def _validate_cooldown(design: dict[str, Any]) -> None:
    """400 for a cool-down that starts before the test period ends or ends before it starts."""
    test = msgspec.convert(design["test_period"], Period)
    cooldown = design.get("cooldown_period")
    if cooldown is not None:
        period = msgspec.convert(cooldown, Period)
        if period.start <= test.end:
            raise invalid_field(
                "cooldown_period.start", f"must come after the test period ends ({test.end}); it overlaps the test"
            )
        if period.end < period.start:
            raise invalid_field("cooldown_period.end", "ends before it starts")


def _validate_spend_given_once(design: dict[str, Any]) -> None:
    """400 for a spend (of the design or of a cell) given next to spend_change, which already says it."""
    if design.get("spend") is not None:
        raise invalid_field("spend", "give either spend or spend_change; with a test_type, spend_change says it")
    for index, cell in enumerate(design.get("cells") or []):
        if cell.get("spend") is not None:  # a cell's spend is the sum of spend_change over its markets
            raise invalid_field(
                f"cells[{index}].spend",
                "give either the cells' spend or spend_change; with a test_type, spend_change says it",
            )


def _validate_change_markets(change: dict[str, float], markets: list[str]) -> None:
    """400 unless spend_change has an entry for each treatment market and for no other market."""
    for geo in change:
        if geo not in markets:
            raise invalid_field(f"spend_change.{geo}", "is not a treatment market")
    for geo in markets:
        if geo not in change:
            raise invalid_field("spend_change", f"has no entry for treatment market {geo!r}")


def _validate_change_signs(test_type: str, change: dict[str, float]) -> None:
    """400 for a change against the test type's direction, or for changes that are all 0."""
    sign = SPEND_SIGN[test_type]
    for geo, value in change.items():
        if value * sign < 0:
            direction = (
                "cut spend: the change must not be positive" if sign < 0 else "adds spend: it must not be negative"
            )
            raise invalid_field(f"spend_change.{geo}", f"a {test_type} test {direction} (got {value:g})")
    if not any(value != 0 for value in change.values()):
        raise invalid_field("spend_change", "every change is 0: the test changes no spend")


async def _spelt_as_in_dataset(connection: Connection, design: dict[str, Any]) -> dict[str, Any]:
    """``design`` with its markets in the dataset's spelling (requests match them regardless of case); its
    cells checked again once spelt so, where ``Chicago`` and ``chicago`` become one market."""
    design = await canonical_geo_design(connection, design)
    cells = stored_cells(design)
    if cells is not None:
        check_cells(cells, None, None, None)
        design["treatment_markets"] = treated_markets(cells)
    return design


def _validate_markets(markets: list[str], pairs: list[list[str]] | None) -> None:
    if len(set(markets)) != len(markets):
        raise invalid_field("treatment_markets", "lists a market twice")
    if pairs is None:
        return
    firsts = [pair[0] for pair in pairs]
    if sorted(firsts) != sorted(markets):
        raise invalid_field("pairs", "the first geo of each pair must be exactly the treatment markets")
    geos = [geo for pair in pairs for geo in pair]
    if len(set(geos)) != len(geos):
        raise invalid_field("pairs", "a geo appears in more than one place")


def _validate_trim_rate(design: dict[str, Any]) -> None:
    """A fixed trim rate applies to a paired experiment and must leave at least 2 of its pairs untrimmed."""
    rate = design.get("trim_rate")
    if rate is None:
        return
    pairs = design.get("pairs") or []
    if not pairs:
        raise invalid_field("trim_rate", "applies to paired experiments (`pairs`): it is trimmed match's")
    trimmed = trimmed_per_side(float(rate), len(pairs))
    if len(pairs) - 2 * trimmed < 2:
        raise invalid_field(
            "trim_rate", f"trims {trimmed} of the {len(pairs)} pairs at each end; at least 2 pairs must remain"
        )


def _markets_used(design: dict[str, Any]) -> list[str]:
    pairs = design.get("pairs") or []
    return sorted({*design["treatment_markets"], *(geo for pair in pairs for geo in pair)})


async def refuse_colliding_geo_experiment(
    repository: ExperimentRepository, experiment_id: UUID, design: dict[str, Any]
) -> None:
    """409 naming the running geo experiment on the same dataset with a shared market and overlapping
    test dates, a cool-down counting as test dates (GeoLift issue #174): two tests in one market at once
    measure each other, and a test in another's cool-down takes its lagged effect for its own. Holds the
    dataset's scheduling lock until the transaction ends, so concurrent writers cannot both pass."""
    dataset_id = UUID(str(design["dataset_id"]))
    test = msgspec.convert(design["test_period"], Period)
    cooldown = design.get("cooldown_period")
    end = test.end if cooldown is None else msgspec.convert(cooldown, Period).end
    await repository.lock_geo_dataset_schedule(dataset_id)
    other = await repository.colliding_geo_experiment(experiment_id, dataset_id, test.start, end, _markets_used(design))
    if other is None:
        return
    period = other["test_period"]
    if isinstance(period, str):
        period = msgspec.json.decode(period)
    shared = ", ".join(other["shared_markets"])
    raise Conflict(
        f"Experiment {other['id']} ({other['name']!r}) is running on dataset {dataset_id} in {shared} from "
        f"{period['start']} to {period['end']}, overlapping this test; change the markets or the test period, or "
        "stop the other experiment first",
        [("treatment_markets", f"shared with running experiment {other['id']}: {shared}")],
    )


def _holdout_design(body: HoldoutExperimentCreate | ExperimentPatch, base: dict[str, Any]) -> dict[str, Any]:
    design = dict(base)
    for field in HOLDOUT_DESIGN_FIELDS:
        value = getattr(body, field, UNSET)
        if value is not UNSET:
            design[field] = msgspec.to_builtins(value)
    return design


def _geo_design(body: GeoExperimentCreate | ExperimentPatch, base: dict[str, Any]) -> dict[str, Any]:
    design = dict(base)
    for field in ("dataset_id", "pairs", *GEO_DESIGN_FIELDS):
        value = getattr(body, field, UNSET)
        if value is not UNSET and not (field == "cells" and value is None):
            design[field] = msgspec.to_builtins(value)
    cells = stored_cells(design)
    if cells is not None:  # every treated market, as a single-cell design lists them
        design["treatment_markets"] = treated_markets(cells)
    return design


def experiment_from_row(row: Row) -> Experiment:
    """The API representation of a stored experiment."""
    common = {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "started_at": row["started_at"],
        "stopped_at": row["stopped_at"],
        "created_by": row["created_by"],
        "updated_by": row["updated_by"],
        "workspace": row["workspace"],
    }
    design = row["design"]
    if row["kind"] == "holdout":
        dates = {
            "actual_period": msgspec.to_builtins(actual_period(row)),
            "test_dates": msgspec.to_builtins(holdout_test_dates(row, utc_today())),
            "assignment_rule": row["assignment_rule"],
        }
        return msgspec.convert(
            {"planned_units": None, "test_period": None, **design, **common, **dates, "salt": row["salt"]},
            HoldoutExperiment,
        )
    defaults: dict[str, Any] = {
        "spend": None,
        "pairs": None,
        "cells": None,
        "design_source": None,
        "exclude_from_controls": [],
        "test_type": None,
        "spend_change": None,
        "cooldown_period": None,
        "trim_rate": None,
    }
    return msgspec.convert({**defaults, **design, **common}, GeoExperiment)


def _request_hash(body: ExperimentCreate, design_source: DesignSource | None = None) -> str:
    content = body if design_source is None else (body, design_source)
    return hashlib.sha256(msgspec.json.encode(content, order="sorted")).hexdigest()


class DateRange(Protocol):
    """Any inclusive range of dates (a request's period)."""

    @property
    def start(self) -> date: ...

    @property
    def end(self) -> date: ...


def design_test_period(after: date, days: int, requested: DateRange | None, simulated: str) -> Period:
    """The test period of an experiment made of a design: ``requested`` when it lasts the ``days`` the design
    was simulated for (400 naming ``test_period`` otherwise, ``simulated`` saying what was), else ``days`` days
    from the day after ``after`` (the design's history)."""
    if requested is None:
        start = after + timedelta(days=1)
        return Period(start=start, end=start + timedelta(days=days - 1))
    length = (requested.end - requested.start).days + 1
    if length != days:
        raise invalid_field("test_period", f"lasts {length} days; {simulated} {days}")
    return Period(start=requested.start, end=requested.end)


async def create_experiment(
    pool: asyncpg.Pool,
    body: ExperimentCreate,
    idempotency_key: str | None,
    design_source: DesignSource | None = None,
) -> tuple[Experiment, bool]:
    """Store a new draft experiment; a retry with the same ``Idempotency-Key`` returns the first one.

    The key belongs to the caller (the request's API key, which is recorded as the creator): another
    caller's use of the same key is unrelated.

    ``design_source`` links a geo experiment to the market selection it was created from. Returns the
    experiment and whether it was created by this call.
    """
    if isinstance(body, HoldoutExperimentCreate):
        _validate_channels(body.channels)
        if body.test_period is not None:
            check_test_period(body.test_period)
        if body.actual_period is not None:
            check_actual_period(body.actual_period, "draft", utc_today())
        design = _holdout_design(body, {})
        salt: str | None = body.salt or secrets.token_hex(16)
    else:
        _validate_periods(body.pre_period, body.test_period)
        check_cells(body.cells, body.treatment_markets, body.spend, body.pairs)
        async with pool.acquire() as connection:
            design = await _spelt_as_in_dataset(connection, _geo_design(body, {}))
        _validate_markets(design["treatment_markets"], design.get("pairs"))
        _validate_trim_rate(design)
        _validate_timing_and_type(design)
        if design_source is not None:
            design["design_source"] = msgspec.to_builtins(design_source)
        salt = None
    request_hash = _request_hash(body, design_source)
    caller = current_key_id()
    async with pool.acquire() as connection, connection.transaction():
        repository = ExperimentRepository(connection)
        experiment_id = uuid4()
        if isinstance(body, GeoExperimentCreate):
            cells = stored_cells(design)
            if cells is not None:
                await check_cells_in_dataset(connection, body.dataset_id, cells)
            await validate_geo_design(
                connection,
                body.dataset_id,
                design["treatment_markets"],
                design.get("pairs"),
                design.get("exclude_from_controls") or [],
            )
            await refuse_colliding_geo_experiment(repository, experiment_id, design)
        if idempotency_key is not None and await key_names_a_stored_request(connection, caller, idempotency_key):
            raise IdempotencyKeyReused(KEY_REUSED_REASON)
        row = await repository.insert(
            experiment_id=experiment_id,
            kind="holdout" if isinstance(body, HoldoutExperimentCreate) else "geo",
            name=body.name,
            design=design,
            salt=salt,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_by=caller,
            **_holdout_columns(body),
        )
        if row is None:
            assert idempotency_key is not None
            existing = await repository.get_by_idempotency_key(caller, idempotency_key)
            assert existing is not None
            if existing["request_hash"] != request_hash:
                raise IdempotencyKeyReused()
            return experiment_from_row(existing), False
        if isinstance(body, HoldoutExperimentCreate):
            await repository.replace_channels(row["id"], [(c.name, c.holdout_fraction) for c in body.channels])
        await audit.record(connection, row["id"], "created", {"kind": row["kind"], "name": row["name"]})
        return experiment_from_row(row), True


def _holdout_columns(body: ExperimentCreate) -> dict[str, Any]:
    """A new holdout experiment's assignment rule and stated actual period (nothing for a geo one)."""
    if not isinstance(body, HoldoutExperimentCreate):
        return {}
    stated = body.actual_period
    return {
        "assignment_rule": body.assignment_rule,
        "actual": None if stated is None else (stated.start, stated.end),
    }


async def fetch_experiment_row(connection: Connection, experiment_id: UUID) -> Row:
    """The stored row, or 404."""
    row = await ExperimentRepository(connection).get(experiment_id)
    if row is None:
        raise NotFound(f"No experiment with id {experiment_id}")
    return row


async def lock_holdout_experiment(connection: Connection, experiment_id: UUID, refusal: str) -> Row:
    """The stored row, locked against a concurrent change until the transaction ends, for writing a holdout
    experiment's data: 404 when unknown, 409 with ``refusal`` when it is a geo experiment."""
    row = await ExperimentRepository(connection).get_for_share(experiment_id)
    if row is None:
        raise NotFound(f"No experiment with id {experiment_id}")
    if row["kind"] != "holdout":
        raise Conflict(refusal)
    return row


_RESULTS_DATA = {  # the kind of data: (a sentence that starts with it, its name)
    "observations": ("Observations", "aggregate observations"),
    "outcomes": ("Unit-level outcomes", "unit-level outcomes"),
}


async def lock_for_results_data(
    connection: Connection, experiment_id: UUID, data: Literal["observations", "outcomes"]
) -> Row:
    """The holdout experiment's row locked for writing its ``data`` (:func:`lock_holdout_experiment`), with the
    lock that serialises the writers of its results' data held: a 409 when its results already come from the
    other kind (aggregate observations or unit-level outcomes, never both)."""
    other = "outcomes" if data == "observations" else "observations"
    (heading, name), (_, other_name) = _RESULTS_DATA[data], _RESULTS_DATA[other]
    row = await lock_holdout_experiment(
        connection, experiment_id, f"{heading} are for holdout experiments; geo experiments read their dataset"
    )
    experiments = ExperimentRepository(connection)
    await experiments.lock_results_data(experiment_id)
    has_other = experiments.has_outcomes if other == "outcomes" else experiments.has_observations
    if await has_other(experiment_id):
        raise Conflict(
            f"This experiment's results come from {other_name}; it cannot take {name} too",
            [(data, f"the experiment already has {other_name}")],
        )
    return row


async def get_experiment(pool: asyncpg.Pool, experiment_id: UUID) -> Experiment:
    """The experiment; a geo one with the coverage of its test period by its dataset's latest version."""
    async with pool.acquire() as connection:
        experiment = experiment_from_row(await fetch_experiment_row(connection, experiment_id))
        if not isinstance(experiment, GeoExperiment):
            return experiment
        coverage = await period_coverage(
            connection,
            experiment.dataset_id,
            None,
            treated=experiment.treatment_markets,
            pairs=experiment.pairs,
            excluded=experiment.exclude_from_controls,
            pre=(experiment.pre_period.start, experiment.pre_period.end),
            test=(experiment.test_period.start, experiment.test_period.end),
        )
    return msgspec.structs.replace(experiment, coverage=coverage)


async def _check_repointed_dataset(connection: Connection, design: dict[str, Any]) -> None:
    """400 naming ``dataset_id`` when the dataset a draft is re-pointed to lacks one of its markets or part of
    its pre-period (its test period may still be arriving)."""
    dataset_id = UUID(str(design["dataset_id"]))
    dataset = await GeoRepository(connection).get(dataset_id)
    if dataset is None:
        raise invalid_field("dataset_id", f"no geo dataset {dataset_id}; upload one with POST /v1/geo/datasets")
    known = set(dataset["geos"])
    used = [*design["treatment_markets"], *(g for pair in design.get("pairs") or [] for g in pair)]
    used += list(design.get("exclude_from_controls") or [])
    lacking = sorted({g for g in used if g not in known})
    if lacking:
        raise invalid_field(
            "dataset_id", f"dataset {dataset_id} lacks the experiment's markets {', '.join(map(repr, lacking))}"
        )
    pre = msgspec.convert(design["pre_period"], Period)
    if dataset["first_date"] > pre.start or dataset["last_date"] < pre.end:
        raise invalid_field(
            "dataset_id",
            f"dataset {dataset_id} spans {dataset['first_date']}..{dataset['last_date']}, not the whole pre-period "
            f"{pre.start}..{pre.end}",
        )


async def list_experiments(
    pool: asyncpg.Pool, *, kind: str | None, status: str | None, cursor: str | None, limit: int
) -> ExperimentPage:
    after = page_start(cursor)
    async with pool.acquire() as connection:
        rows = await ExperimentRepository(connection).list(kind=kind, status=status, after=after, limit=limit + 1)
    page, next_cursor = split_page(rows, limit)
    return ExperimentPage(items=[experiment_from_row(row) for row in page], next_cursor=next_cursor)


def _changed_design_fields(patch: ExperimentPatch) -> list[str]:
    fields = dict.fromkeys((*HOLDOUT_DESIGN_FIELDS, *GEO_DESIGN_FIELDS))  # test_period is in both
    return [f for f in fields if getattr(patch, f) is not UNSET]


async def patch_experiment(pool: asyncpg.Pool, experiment_id: UUID, patch: ExperimentPatch) -> Experiment:
    """Apply a status transition and/or design changes, under a row lock."""
    async with pool.acquire() as connection, connection.transaction():
        repository = ExperimentRepository(connection)
        row = await repository.get_for_update(experiment_id)
        if row is None:
            raise NotFound(f"No experiment with id {experiment_id}")
        kind, current = row["kind"], row["status"]
        changed = _changed_design_fields(patch)
        status = _checked_patch_status(kind, current, changed, patch)
        design: dict[str, Any] = row["design"]
        if kind == "holdout":
            design = await _patched_holdout_design(repository, experiment_id, patch, design, status)
        else:
            design = await _patched_geo_design(connection, repository, experiment_id, patch, design, status)
        name = row["name"] if patch.name is UNSET else patch.name
        updated = await repository.update(
            experiment_id, name=name, status=status, design=design, updated_by=current_key_id()
        )
        if kind == "holdout":
            stated = patch.actual_period
            start, end = (row["actual_start"], row["actual_end"]) if stated is UNSET else (stated.start, stated.end)
            updated = await repository.update_actual_period(experiment_id, start, end)
            if stated is not UNSET:
                changed.append("actual_period")
        if status != current:
            await audit.record(connection, experiment_id, "status_changed", {"from": current, "to": status})
        if changed or name != row["name"]:
            fields = changed + (["name"] if name != row["name"] else [])
            await audit.record(connection, experiment_id, "design_changed", {"fields": fields})
        return experiment_from_row(updated)


def _checked_patch_status(kind: str, current: str, changed: list[str], patch: ExperimentPatch) -> str:
    """The status after the patch; refuses fields of the other kind of experiment, design changes after
    draft, an illegal transition, and an actual_period on a geo experiment."""
    foreign = [f for f in changed if f not in (HOLDOUT_DESIGN_FIELDS if kind == "holdout" else GEO_DESIGN_FIELDS)]
    if foreign:
        raise InvalidInput(
            f"{foreign[0]}: not a field of a {kind} experiment",
            [(f, f"not a field of a {kind} experiment") for f in foreign],
        )
    if changed and current != "draft":
        raise Conflict(
            f"Design fields are frozen once an experiment leaves draft (status is {current!r})",
            [(f, "frozen: the experiment is not a draft") for f in changed],
        )
    status: str = current if patch.status is UNSET else patch.status
    if status != current and (current, status) not in ALLOWED_TRANSITIONS:
        raise Conflict(
            f"Cannot move an experiment from {current!r} to {status!r}; allowed: draft → running → stopped",
            [("status", f"illegal transition {current} → {status}")],
        )
    if patch.actual_period is not UNSET and kind != "holdout":
        raise invalid_field("actual_period", "not a field of a geo experiment: its dates are its test_period")
    return status


async def _patched_holdout_design(
    repository: ExperimentRepository, experiment_id: UUID, patch: ExperimentPatch, design: dict[str, Any], status: str
) -> dict[str, Any]:
    """A holdout experiment's design with the patch applied, its dates and channels checked; new channels
    replace the stored ones (refused once units are assigned)."""
    if patch.test_period is not UNSET:
        check_test_period(patch.test_period)
    if patch.actual_period is not UNSET:
        check_actual_period(patch.actual_period, status, utc_today())
    if patch.channels is not UNSET:
        _validate_channels(patch.channels)
        if await repository.has_assignments(experiment_id):
            raise Conflict(
                "Channels cannot change once units are assigned: their stored arms refer to these channels",
                [("channels", "frozen: units are assigned")],
            )
        await repository.replace_channels(experiment_id, [(c.name, c.holdout_fraction) for c in patch.channels])
    return _holdout_design(patch, design)


async def _patched_geo_design(
    connection: Connection,
    repository: ExperimentRepository,
    experiment_id: UUID,
    patch: ExperimentPatch,
    design: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    """A geo experiment's design with the patch applied, spelt as in its dataset and checked as a new one
    is: cells, periods, markets, trim rate, timing and test type, and no collision unless it is stopped."""
    if "cells" in design and patch.treatment_markets is not UNSET:
        raise invalid_field("treatment_markets", "this experiment's markets are set per cell: patch `cells`")
    design = await _spelt_as_in_dataset(connection, _geo_design(patch, design))
    cells = stored_cells(design)
    if patch.dataset_id is not UNSET:
        await _check_repointed_dataset(connection, design)
    if cells is not None:
        check_cells(cells, None, design.get("spend"), design.get("pairs"))
        await check_cells_in_dataset(connection, UUID(str(design["dataset_id"])), cells)
    pre = msgspec.convert(design["pre_period"], Period)
    test = msgspec.convert(design["test_period"], Period)
    _validate_periods(pre, test)
    _validate_markets(design["treatment_markets"], design.get("pairs"))
    _validate_trim_rate(design)
    _validate_timing_and_type(design)
    await validate_geo_design(
        connection,
        UUID(str(design["dataset_id"])),
        design["treatment_markets"],
        design.get("pairs"),
        design.get("exclude_from_controls") or [],
    )
    if status != "stopped":
        await refuse_colliding_geo_experiment(repository, experiment_id, design)
    return design
