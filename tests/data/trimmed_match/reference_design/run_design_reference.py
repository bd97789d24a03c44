"""Regenerate ``design_reference.json``: google/trimmed_match's own design code on its example data.

In a throwaway venv with pandas, scipy, matplotlib, seaborn and jinja2, and a checkout of
google/trimmed_match whose ``trimmed_match/core/python/estimator_ext.py`` is this folder's stand-in::

    PYTHONPATH=<checkout>:<counterfact> python run_design_reference.py > ../design_reference.json

``TrimmedMatchGeoXDesign.create_geo_pairs`` (cross-validated) and ``report_candidate_designs`` with the
colab's settings: design window 2020-01-01..2020-12-29, evaluation window 2020-12-02..2020-12-29,
matching weights response 1 and spend 0.01, budget 300,000, iROAS 0, 10 simulations (the package's
legacy seeds 0..9), the RMSE's trim rate up to 0.10.
"""

import json
import sys
import warnings
from typing import Any

import pandas as pd
from trimmed_match.design.common_classes import GeoXType, TimeWindow
from trimmed_match.design.trimmed_match_design import TrimmedMatchGeoXDesign
from trimmed_match.design.util import CalculateMinDetectableIroas

DATA = sys.argv[1] if len(sys.argv) > 1 else "tests/data/trimmed_match/example_data_for_design.csv"
BUDGET = 300000.0


def main() -> None:
    warnings.filterwarnings("ignore")
    data = pd.read_csv(DATA, parse_dates=["date"]).rename(columns={"cost": "spend"})
    out: dict[str, Any] = {
        "design_window": ["2020-01-01", "2020-12-29"],
        "eval_window": ["2020-12-02", "2020-12-29"],
        "matching_metrics": {"response": 1.0, "spend": 0.01},
        "num_simulations": 10,
        "max_trim_rate": 0.10,
        "budget": BUDGET,
        "iroas": 0.0,
        "types": {},
    }
    kinds = [("holdback", GeoXType.HOLD_BACK), ("go-dark", GeoXType.GO_DARK), ("heavy-up", GeoXType.HEAVY_UP)]
    for name, geox_type in kinds:
        design = TrimmedMatchGeoXDesign(
            geox_type,
            pretest_data=data,
            time_window_for_design=TimeWindow("2020-01-01", "2020-12-29"),
            time_window_for_eval=TimeWindow("2020-12-02", "2020-12-29"),
            matching_metrics={"response": 1.0, "spend": 0.01},
        )
        design.create_geo_pairs(use_cross_validation=True)
        dropped = [0, 40, 77] if name == "holdback" else [40]
        pairings = design.pairs
        design._pairs = [pairings[i] for i in dropped]
        results, detailed = design.report_candidate_designs(budget_list=[BUDGET], iroas_list=[0.0], num_simulations=10)
        rows = []
        for _, row in results.iterrows():
            index = int(row["pair_index"])
            rows.append(
                {
                    "dropped_pairs": dropped[index],
                    "num_pairs": int(row["num_pairs"]),
                    "rmse": row["rmse"],
                    "experiment_response": row["experiment_response"],
                    "experiment_spend": row["experiment_spend"],
                    "estimates": detailed[(BUDGET, 0.0, index)]["estimate"].tolist(),
                    "min_detectable_iroas_10_80": CalculateMinDetectableIroas(0.1, 0.8).at(row["rmse"]),
                }
            )
        out["types"][name] = rows
        if name == "holdback":
            first = pairings[0]
            out["pairs"] = {column: first[column].tolist() for column in ("geo1", "geo2", "distance", "pair")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
