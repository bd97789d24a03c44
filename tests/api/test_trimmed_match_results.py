"""`method=trimmed_match` on paired geo experiments, against Google's trimmed_match post-analysis colab.

The colab guide (``trimmed_match/g3doc/Trimmed_Match_post_analysis_colab_guide.md``, image_post_7.png) runs
``example_data_for_post_analysis.csv`` (copied to ``tests/data/trimmed_match``) with the test period
2020-11-04..2020-12-01, pairs 41 and 43 excluded and an 80% interval: iROAS 0.212, interval
[0.089, 0.352] (at the normal quantile; the API's t quantile gives [0.086, 0.355]), trim rate 0.20,
cost 187K (186,574.10) and incremental response 39.6K. Here the panel
is uploaded as it is (``response`` as kpi, ``cost`` as spend) and the 55 remaining pairs become a paired
geo experiment, treatment geo first as the file's ``assignment`` column says (1 = treatment).
"""

from __future__ import annotations

import csv
from typing import Any

import pytest

from tests.api.helpers import Client, create_experiment, upload_dataset
from tests.conftest import DATA_DIR

CSV = {"Content-Type": "text/csv"}
POST_ANALYSIS = DATA_DIR / "trimmed_match" / "example_data_for_post_analysis.csv"
EXCLUDED_PAIRS = {"41", "43"}


def _post_analysis() -> tuple[str, list[list[str]]]:
    """The panel as date,geo,kpi,spend CSV and the colab's pairs as [treatment, control] geo names."""
    lines = ["date,geo,kpi,spend"]
    members: dict[str, dict[str, str]] = {}
    with POST_ANALYSIS.open(newline="") as handle:
        for row in csv.DictReader(handle):
            lines.append(f"{row['date'][:10]},g{row['geo']},{row['response']},{row['cost']}")
            members.setdefault(row["pair"], {})[row["assignment"]] = f"g{row['geo']}"
    ordered = sorted(members.items(), key=lambda kv: int(kv[0]))
    pairs = [[geos["1"], geos["2"]] for pair, geos in ordered if pair not in EXCLUDED_PAIRS]
    return "\n".join(lines) + "\n", pairs


async def create_paired_experiment(
    client: Client,
    panel_csv: str,
    pairs: list[list[str]] | None,
    periods: dict[str, dict[str, str]] | None = None,
    trim_rate: float | None = None,
) -> str:
    periods = periods or {}
    dataset_id = await upload_dataset(client, panel_csv)
    treated = [p[0] for p in pairs] if pairs else ["g1", "g3"]
    body: dict[str, Any] = {
        "kind": "geo",
        "name": "Paired search test",
        "dataset_id": dataset_id,
        "channel": "search",
        "treatment_markets": treated,
        "pre_period": periods.get("pre_period", {"start": "2020-01-01", "end": "2020-11-03"}),
        "test_period": periods.get("test_period", {"start": "2020-11-04", "end": "2020-12-01"}),
    }
    if pairs is not None:
        body["pairs"] = pairs
    if trim_rate is not None:
        body["trim_rate"] = trim_rate
    return await create_experiment(client, body)


async def _colab_results(client: Client) -> dict[str, Any]:
    panel_csv, pairs = _post_analysis()
    assert len(pairs) == 55
    experiment = await create_paired_experiment(client, panel_csv, pairs)
    answer = await client.get(
        f"/v1/experiments/{experiment}/results", params={"method": "trimmed_match", "confidence_level": 0.8}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _small_panel(with_spend: bool, spend_delta: float = 5.0) -> str:
    """Six geos g1..g6 over 2021-01-01..2021-01-20; the test period is the last five days."""
    lines = ["date,geo,kpi" + (",spend" if with_spend else "")]
    for day in range(1, 21):
        for geo in range(1, 7):
            kpi = 100.0 + 3.0 * geo + (day * geo) % 7
            spend = 10.0 + (spend_delta if geo % 2 == 1 and day > 15 else 0.0)
            lines.append(f"2021-01-{day:02d},g{geo},{kpi}" + (f",{spend}" if with_spend else ""))
    return "\n".join(lines) + "\n"


SMALL_PERIODS = {
    "pre_period": {"start": "2021-01-01", "end": "2021-01-15"},
    "test_period": {"start": "2021-01-16", "end": "2021-01-20"},
}
SMALL_PAIRS = [["g1", "g2"], ["g3", "g4"], ["g5", "g6"]]


async def test_iroas_matches_the_colab_and_its_interval_uses_the_t_quantile(client: Client) -> None:
    # The colab's [0.089, 0.352] inverts the test at the normal quantile (reproduced with quantile="normal" in
    # tests/stats/test_trimmed_match.py); the API uses Student's t with 55 - 2 x 11 - 1 = 32 degrees of
    # freedom (calibrated with few pairs, stats/geo/trimmed_match.py), a slightly wider interval around it.
    result = await _colab_results(client)
    assert result["kind"] == "geo" and result["method"] == "trimmed_match" and result["confidence_level"] == 0.8
    iroas = result["iroas"]
    assert f"{iroas['estimate']:.3f}" == "0.212"
    assert (f"{iroas['ci_low']:.3f}", f"{iroas['ci_high']:.3f}") == ("0.086", "0.355")
    assert f"{result['fit']['std_error']:.3f}" == "0.093"
    assert f"{result['fit']['trim_rate']:.2f}" == "0.20"


async def test_the_data_driven_trim_rate_is_reported_as_such(client: Client) -> None:
    fit = (await _colab_results(client))["fit"]
    assert fit["trim_rate_source"] == "data"


async def test_a_trim_rate_fixed_by_the_design_is_the_one_used(client: Client) -> None:
    panel_csv, pairs = _post_analysis()
    experiment = await create_paired_experiment(client, panel_csv, pairs, trim_rate=0.1)
    assert (await client.get(f"/v1/experiments/{experiment}")).json()["trim_rate"] == 0.1
    answer = await client.get(
        f"/v1/experiments/{experiment}/results", params={"method": "trimmed_match", "confidence_level": 0.8}
    )
    assert answer.status_code == 200, answer.text
    fit = answer.json()["fit"]
    assert (fit["trim_rate"], fit["trim_rate_source"]) == (0.1, "design")
    assert fit["trimmed_per_side"] == 6  # ceil(0.1 x 55)
    assert [c["trim_rate"] for c in fit["trim_candidates"]] == [0.1]


async def test_a_trim_rate_needs_a_paired_experiment(client: Client) -> None:
    upload = await client.post("/v1/geo/datasets", content=_small_panel(True), headers=CSV)
    body = {
        "kind": "geo",
        "name": "unpaired",
        "dataset_id": upload.json()["id"],
        "channel": "search",
        "treatment_markets": ["g1", "g3"],
        **SMALL_PERIODS,
        "trim_rate": 0.1,
    }
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["invalid_params"][0]["name"] == "trim_rate"


async def test_a_trim_rate_that_leaves_fewer_than_two_pairs_is_refused(client: Client) -> None:
    upload = await client.post("/v1/geo/datasets", content=_small_panel(True), headers=CSV)
    body = {
        "kind": "geo",
        "name": "over-trimmed",
        "dataset_id": upload.json()["id"],
        "channel": "search",
        "treatment_markets": [p[0] for p in SMALL_PAIRS],
        "pairs": SMALL_PAIRS,
        **SMALL_PERIODS,
        "trim_rate": 0.3,  # ceil(0.3 x 3) = 1 at each end: 1 pair left
    }
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["invalid_params"][0]["name"] == "trim_rate"
    assert "at least 2 pairs must remain" in response.json()["detail"]


async def test_incremental_response_and_cost_match_the_colab(client: Client) -> None:
    result = await _colab_results(client)
    fit, incremental = result["fit"], result["incremental"]
    assert fit["incremental_cost"] == pytest.approx(186574.10402358978, rel=1e-9)
    assert round(incremental["estimate"] / 100.0) / 10.0 == 39.6
    assert incremental["estimate"] == pytest.approx(result["iroas"]["estimate"] * fit["incremental_cost"])
    assert incremental["ci_low"] < incremental["estimate"] < incremental["ci_high"]
    # Lift relative to the counterfactual, observed minus incremental.
    counterfactual = fit["observed_total"] - incremental["estimate"]
    assert fit["counterfactual_total"] == pytest.approx(counterfactual)
    assert result["lift"]["relative"]["estimate"] == pytest.approx(incremental["estimate"] / counterfactual)
    assert result["att"]["estimate"] == pytest.approx(incremental["estimate"] / (55 * 28))


async def test_p_value_agrees_with_the_iroas_interval(client: Client) -> None:
    result = await _colab_results(client)
    iroas = result["iroas"]
    excludes_zero = iroas["ci_low"] > 0.0 or iroas["ci_high"] < 0.0
    assert excludes_zero
    assert 0.0 < result["p_value"] <= 1.0 - 0.8
    assert result["fit"]["p_value_method"] == "t_test"


async def test_result_names_the_trimmed_pairs_and_average_roi(client: Client) -> None:
    result = await _colab_results(client)
    fit = result["fit"]
    assert fit["roi_kind"] == "average"
    assert fit["n_pairs"] == 55 and fit["ci_is_fallback"] is False
    assert fit["trimmed_per_side"] == 11 and len(fit["trimmed_pairs"]) == 22
    _, pairs = _post_analysis()
    assert all(pair in pairs for pair in fit["trimmed_pairs"])
    assert result["weights"] == {}
    assert result["series"][0]["date"] == "2020-01-01" and result["series"][-1]["date"] == "2020-12-01"


async def test_method_needs_pairs(client: Client) -> None:
    experiment = await create_paired_experiment(client, _small_panel(with_spend=True), None, SMALL_PERIODS)
    answer = await client.get(f"/v1/experiments/{experiment}/results", params={"method": "trimmed_match"})
    assert answer.status_code == 400, answer.text
    assert [p["name"] for p in answer.json()["invalid_params"]] == ["method"]


async def test_panel_without_spend_is_refused(client: Client) -> None:
    experiment = await create_paired_experiment(client, _small_panel(with_spend=False), SMALL_PAIRS, SMALL_PERIODS)
    answer = await client.get(f"/v1/experiments/{experiment}/results", params={"method": "trimmed_match"})
    assert answer.status_code == 409, answer.text
    assert "spend" in answer.json()["detail"]


async def test_pairs_with_equal_spend_are_refused(client: Client) -> None:
    panel = _small_panel(with_spend=True, spend_delta=0.0)
    experiment = await create_paired_experiment(client, panel, SMALL_PAIRS, SMALL_PERIODS)
    answer = await client.get(f"/v1/experiments/{experiment}/results", params={"method": "trimmed_match"})
    assert answer.status_code == 409, answer.text
    assert "spend delta" in answer.json()["detail"]


async def test_small_paired_experiment_answers(client: Client) -> None:
    experiment = await create_paired_experiment(client, _small_panel(with_spend=True), SMALL_PAIRS, SMALL_PERIODS)
    answer = await client.get(
        f"/v1/experiments/{experiment}/results", params={"method": "trimmed_match", "confidence_level": 0.9}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    iroas, p_value = result["iroas"], result["p_value"]
    assert iroas["ci_low"] <= iroas["estimate"] <= iroas["ci_high"]
    assert (p_value <= 0.1) == (iroas["ci_low"] > 0.0 or iroas["ci_high"] < 0.0)
    assert any("3 pairs" in w for w in result["warnings"])
