"""The document typed client generators read: unions of tagged structs carry a discriminator, parameters no null,
creates link to the operations that use their ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest

from api.openapi.rendering import Link, add_discriminators, add_links, restore_field_constraints, without_null

DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text(encoding="utf-8")
)
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]


def unions(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``oneOf`` of two or more ``$ref``s in the document, with where it is."""
    if isinstance(node, dict):
        refs = [member for member in node.get("oneOf", []) if "$ref" in member]
        if len(refs) >= 2:
            yield path, node
        for key, value in node.items():
            yield from unions(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from unions(value, f"{path}[{index}]")


def test_every_union_of_tagged_structs_names_its_discriminator_and_maps_each_tag_to_its_member() -> None:
    checked = 0
    for path, union in unions(DOCUMENT):
        refs = [member["$ref"] for member in union["oneOf"] if "$ref" in member]
        tags = [SCHEMAS[ref.rsplit("/", 1)[1]]["properties"].get("kind", {}).get("const") for ref in refs]
        if None in tags:
            assert "discriminator" not in union, path  # untagged members (assignment answers): no discriminator
            continue
        assert union["discriminator"] == {"propertyName": "kind", "mapping": dict(zip(tags, refs, strict=True))}, path
        checked += 1
    assert checked >= 10  # experiments, metrics, results, a job's result


def test_a_jobs_result_is_one_of_the_answers_jobs_give_or_null() -> None:
    result = SCHEMAS["Job"]["properties"]["result"]
    assert result["discriminator"]["mapping"] == {
        "holdout": "#/components/schemas/HoldoutResults",
        "geo": "#/components/schemas/GeoResults",
        "geo_cells": "#/components/schemas/MultiCellGeoResults",
        "geo_power": "#/components/schemas/GeoPowerResult",
        "market_selection": "#/components/schemas/MarketSelectionResult",
        "matched_pairs": "#/components/schemas/MatchedPairsResult",
        "robyn": "#/components/schemas/RobynCalibration",
        "meridian": "#/components/schemas/MeridianCalibration",
        "pymc-marketing": "#/components/schemas/PymcMarketingCalibration",
    }
    assert {"type": "null"} in result["oneOf"]


def resolved(parameter: dict[str, Any]) -> dict[str, Any]:
    """A parameter of an operation, or the ``components.parameters`` entry its ``$ref`` names."""
    reference = parameter.get("$ref")
    if reference is None:
        return parameter
    found: dict[str, Any] = DOCUMENT["components"]["parameters"][reference.removeprefix("#/components/parameters/")]
    return found


def parameters() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for parameter in map(resolved, operation.get("parameters", [])):
                yield f"{method.upper()} {path} {parameter['name']}", parameter["schema"]


@pytest.mark.parametrize(("where", "schema"), list(parameters()), ids=lambda value: str(value)[:60])
def test_no_parameter_admits_null(where: str, schema: dict[str, Any]) -> None:
    assert "null" not in json.dumps(schema), where


def test_an_optional_enum_parameter_keeps_its_values_without_null() -> None:
    schema = {"enum": ["holdout", "geo", None], "type": ["null", "string"], "description": "kind"}
    without_null(schema)
    assert schema == {"enum": ["holdout", "geo"], "type": "string", "description": "kind"}


def test_an_optional_parameter_becomes_its_one_non_null_type() -> None:
    schema = {"oneOf": [{"type": "number"}, {"type": "null"}], "exclusiveMinimum": 0.5}
    without_null(schema)
    assert schema == {"type": "number", "exclusiveMinimum": 0.5}


def test_members_that_share_no_constant_property_get_no_discriminator() -> None:
    schemas = {"A": {"properties": {"kind": {"const": "a"}}}, "B": {"properties": {"units": {"type": "integer"}}}}
    union: dict[str, Any] = {"oneOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}]}
    add_discriminators(union, schemas)
    assert "discriminator" not in union


def operations_by_id() -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: {"path": path, **operation}
        for path, item in DOCUMENT["paths"].items()
        for operation in item.values()
        if "operationId" in operation
    }


def test_a_created_experiment_links_to_every_operation_on_it_by_its_id() -> None:
    links = operations_by_id()["CreateExperiment"]["responses"]["201"]["links"]
    assert {name: link["parameters"] for name, link in links.items()} == {
        target: {"experiment_id": "$response.body#/id"}
        for target in (
            "GetExperiment",
            "UpdateExperiment",
            "CreateAssignments",
            "GetAssignmentSummary",
            "ListAssignments",
            "CreateObservations",
            "CreateOutcomes",
            "PutChannelSpend",
            "GetExperimentResults",
            "GetCalibrationExport",
            "ListExperimentEvents",
            "DeleteExperiment",
        )
    }


def test_a_job_answered_with_202_links_to_polling_and_cancelling_it() -> None:
    for source in ("CreateMarketSelection", "CreateMatchedPairDesign", "GetGeoPower", "GetExperimentResults"):
        links = operations_by_id()[source]["responses"]["202"]["links"]
        assert links["GetJob"]["parameters"] == {"job_id": "$response.body#/id"}, source
        assert links["CancelJob"]["parameters"] == {"job_id": "$response.body#/id"}, source


def test_every_link_names_an_operation_and_only_its_path_parameters() -> None:
    operations = operations_by_id()
    checked = 0
    for source in operations.values():
        for response in source["responses"].values():
            for link in response.get("links", {}).values():
                target = operations[link["operationId"]]
                path_parameters = {p["name"] for p in map(resolved, target.get("parameters", [])) if p["in"] == "path"}
                assert set(link.get("parameters", {})) == path_parameters, link
                checked += 1
    assert checked >= 40


def test_an_uploaded_dataset_links_to_the_designs_that_read_it_by_their_bodys_dataset_id() -> None:
    links = operations_by_id()["CreateGeoDataset"]["responses"]["201"]["links"]
    for target in ("GetGeoPower", "CreateMarketSelection", "CreateMatchedPairDesign"):
        assert links[target]["requestBody"] == {"dataset_id": "$response.body#/id"}, target


def test_a_link_to_an_operation_the_api_does_not_have_is_refused() -> None:
    document: dict[str, Any] = {"paths": {"/a": {"post": {"operationId": "CreateA", "responses": {"201": {}}}}}}
    with pytest.raises(KeyError, match="GetA"):
        add_links(document, (Link("CreateA", ("201",), "a_id", ("GetA",)),))


def test_a_request_object_that_refuses_unknown_fields_says_so() -> None:
    # schemathesis' positive_data_acceptance sent an extra property the document allowed and got 400
    for name in ("ExperimentFromPairDesign", "HoldoutExperimentCreate", "GeoPowerRequest", "ExperimentPatch"):
        assert SCHEMAS[name]["additionalProperties"] is False, name


def test_a_response_object_stays_open() -> None:
    assert "additionalProperties" not in SCHEMAS["HoldoutExperiment"]


def test_a_bound_of_zero_on_an_optional_number_is_in_the_document() -> None:
    # Litestar skipped falsy bounds: ge=0.0 vanished while the server refused negative spend with 400
    assert SCHEMAS["ExperimentFromPairDesign"]["properties"]["spend"]["minimum"] == 0.0
    assert SCHEMAS["ProportionMetricSpec"]["properties"]["baseline"]["exclusiveMinimum"] == 0.0


def test_the_items_of_a_list_keep_their_constraints() -> None:
    # Litestar dropped them: a market named "" or a duration of 0 days was schema-valid, then refused with 400
    assert SCHEMAS["GeoPowerRequest"]["properties"]["treatment_markets"]["items"]["minLength"] == 1
    assert SCHEMAS["MarketSelectionRequest"]["properties"]["durations"]["items"]["minimum"] == 1


def test_restored_bounds_come_from_the_structs_fields() -> None:
    class Spend(msgspec.Struct):
        amount: Annotated[float, msgspec.Meta(ge=0.0, description="Money.")] | None = None

    schemas: dict[str, Any] = {"Spend": {"type": "object", "properties": {"amount": {"oneOf": []}}}}
    restore_field_constraints(schemas, [Spend])
    assert schemas["Spend"]["properties"]["amount"]["minimum"] == 0.0


def test_every_operation_behind_a_key_declares_the_workspace_header() -> None:
    guarded = {
        f"{method.upper()} {path}": [resolved(parameter)["name"] for parameter in operation.get("parameters", [])]
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    }
    assert len(guarded) >= 30
    assert {where for where, names in guarded.items() if "Counterfact-Workspace" not in names} == set()
