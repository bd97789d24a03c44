// The power calculator: the form becomes a POST /v1/power/holdout, then the curve around the answer.
import {
  api,
  clearProblem,
  drawChart,
  optionalNumber,
  percent,
  setUpKeyForm,
  showProblem,
  whole,
  withoutEmpty,
} from "./common.js";

const form = document.getElementById("power-form");
const problemBox = document.getElementById("power-problem");
const kind = document.getElementById("metric-kind");
const stdDevField = document.getElementById("std-dev-field");

/** The request body the form describes (empty optional fields are left out, so the API's defaults apply). */
export function designFromForm() {
  const metric = { kind: kind.value, baseline: optionalNumber("baseline") };
  if (kind.value === "mean") metric.std_dev = optionalNumber("std-dev");
  const design = {
    metric,
    solve_for: "sample_size",
    mde: { relative: optionalNumber("mde") },
    holdout_fraction: optionalNumber("holdout-fraction"),
    power: optionalNumber("power"),
    alpha: optionalNumber("alpha"),
    comparisons: optionalNumber("comparisons"),
    daily_units: optionalNumber("daily-units"),
  };
  return withoutEmpty(design);
}

function show(answer) {
  document.getElementById("sample-total").textContent = whole(answer.sample_size.total);
  document.getElementById("sample-treatment").textContent = whole(answer.sample_size.treatment);
  document.getElementById("sample-holdout").textContent = whole(answer.sample_size.holdout);
  document.getElementById("duration").textContent =
    answer.duration_days === null ? "—" : `${answer.duration_days} days`;
  document.getElementById("achieved-power").textContent = percent(answer.power);
  const warnings = document.getElementById("power-warnings");
  warnings.replaceChildren(
    ...answer.warnings.map((text) => Object.assign(document.createElement("li"), { textContent: text })),
  );
  document.getElementById("power-result").hidden = false;
}

async function calculate(event) {
  event.preventDefault();
  clearProblem(problemBox, form);
  const button = document.getElementById("power-submit");
  button.disabled = true;
  try {
    const design = designFromForm();
    const answer = await api("/v1/power/holdout", { method: "POST", json: design });
    show(answer);
    const total = answer.sample_size.total;
    const curve = await api("/v1/power/holdout/curve", {
      method: "POST",
      json: {
        ...design,
        curve: "power",
        sample_size_range: { min: Math.max(4, Math.round(total / 10)), max: total * 3, points: 40, scale: "log" },
      },
    });
    await drawChart(document.getElementById("power-chart"), curve.chart);
  } catch (error) {
    showProblem(problemBox, error, form);
  } finally {
    button.disabled = false;
  }
}

kind.addEventListener("change", () => {
  stdDevField.hidden = kind.value !== "mean";
  document.getElementById("baseline-hint").textContent =
    kind.value === "mean" ? "The holdout's average per user." : "A rate as a fraction: 0.05 is 5%.";
});
form.addEventListener("submit", calculate);
setUpKeyForm();
