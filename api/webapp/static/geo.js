// Geo design: upload a panel, run a market selection job, follow its progress, create the experiment; or a
// matched-pair design (a job too) with its precision against the number of pairs kept.
import {
  api,
  clearProblem,
  drawChart,
  followJob,
  idempotencyKey,
  jobProblem,
  optionalNumber,
  parseNameList,
  parseNumberList,
  percent,
  setUpKeyForm,
  showProblem,
  whole,
  withoutEmpty,
} from "./common.js";

let jobId = null;

async function upload(event) {
  event.preventDefault();
  const form = event.target;
  const problemBox = document.getElementById("upload-problem");
  clearProblem(problemBox, form);
  const file = document.getElementById("panel-file").files[0];
  if (!file) {
    showProblem(
      problemBox,
      { problem: { title: "No file", detail: "Choose a CSV file.", invalid_params: [{ name: "body", reason: "no file chosen" }] } },
      form,
    );
    return;
  }
  const name = document.getElementById("panel-name").value.trim();
  const query = name ? `?name=${encodeURIComponent(name)}` : "";
  try {
    const dataset = await api(`/v1/geo/datasets${query}`, { method: "POST", body: file, contentType: "text/csv" });
    document.getElementById("dataset-id").value = dataset.id;
    document.getElementById("pairs-dataset-id").value = dataset.id;
    document.getElementById("dataset-summary").textContent =
      `Stored "${dataset.name}": ${dataset.geo_count} markets, ${dataset.date_count} dates ` +
      `(${dataset.first_date} to ${dataset.last_date}). Dataset ID ${dataset.id}.`;
  } catch (error) {
    showProblem(problemBox, error, form);
  }
}

function selectionRequest() {
  const request = {
    dataset_id: document.getElementById("dataset-id").value.trim(),
    treatment_sizes: parseNumberList(document.getElementById("treatment-sizes").value),
    durations: parseNumberList(document.getElementById("durations").value),
    effect_sizes: parseNumberList(document.getElementById("effect-sizes").value),
    include: parseNameList(document.getElementById("include").value),
    exclude: parseNameList(document.getElementById("exclude").value),
    cost_per_kpi: optionalNumber("cost-per-kpi"),
    search_budget: optionalNumber("search-budget"),
    top: optionalNumber("top"),
  };
  return withoutEmpty(request);
}

/** Submit a design form as a job (POST `path` with the body `request()` builds), follow its progress and `show`
 * its result; a refusal, or a job that did not succeed (`what` names it), goes to the form's problem box. `ids`
 * names the form's elements: its button, problem box, results (hidden meanwhile) and progress block, bar and
 * status. `submitted` is handed the job once it is queued. */
async function runDesignJob(event, { ids, path, request, what, show, submitted = () => {} }) {
  event.preventDefault();
  const form = event.target;
  const problemBox = document.getElementById(ids.problem);
  clearProblem(problemBox, form);
  document.getElementById(ids.results).hidden = true;
  const button = document.getElementById(ids.submit);
  button.disabled = true;
  try {
    const job = await api(path, { method: "POST", json: request() });
    submitted(job);
    document.getElementById(ids.progress).hidden = false;
    const finished = await followJob(job, document.getElementById(ids.bar), document.getElementById(ids.status));
    if (finished.status === "succeeded") {
      await show(finished.result);
    } else {
      showProblem(problemBox, jobProblem(finished, what), form);
    }
  } catch (error) {
    showProblem(problemBox, error, form);
  } finally {
    button.disabled = false;
  }
}

function runSelection(event) {
  return runDesignJob(event, {
    ids: {
      submit: "selection-submit",
      problem: "selection-problem",
      results: "designs",
      progress: "job-progress",
      bar: "job-bar",
      status: "job-status",
    },
    path: "/v1/geo/market-selection",
    request: selectionRequest,
    what: "The market selection",
    show: showDesigns,
    submitted: (job) => {
      jobId = job.id;
    },
  });
}

function cell(text) {
  return Object.assign(document.createElement("td"), { textContent: text });
}

async function showDesigns(result) {
  const rows = document.getElementById("candidate-rows");
  rows.replaceChildren();
  for (const candidate of result.candidates) {
    const row = document.createElement("tr");
    const pick = document.createElement("td");
    const radio = Object.assign(document.createElement("input"), {
      type: "radio",
      name: "rank",
      value: String(candidate.rank),
      id: `rank-${candidate.rank}`,
      checked: candidate.rank === 1,
    });
    radio.dataset.field = "rank";
    const label = Object.assign(document.createElement("label"), {
      htmlFor: radio.id,
      textContent: `#${candidate.rank}`,
    });
    pick.append(radio, " ", label);
    row.append(
      pick,
      cell(candidate.markets.join(", ")),
      cell(String(candidate.duration)),
      cell(candidate.mde === null ? "none" : percent(candidate.mde)),
      cell(candidate.power_at_mde === null ? "—" : percent(candidate.power_at_mde, 0)),
      cell(candidate.investment === null ? "—" : whole(candidate.investment)),
    );
    rows.append(row);
  }
  // Each cell names its column, for the stacked layout of narrow screens (app.css).
  const headings = [...document.querySelectorAll("#designs thead th")].map((th) => th.textContent);
  for (const row of rows.rows) {
    for (const [index, td] of [...row.cells].entries()) td.dataset.label = headings[index];
  }
  document.getElementById("designs").hidden = false;
  if (!result.candidates.length) {
    document.getElementById("experiment-created").textContent = "No design qualified; widen the search.";
  }
  await drawChart(document.getElementById("selection-chart"), result.chart);
}

async function createExperiment(event) {
  event.preventDefault();
  const form = event.target;
  const problemBox = document.getElementById("experiment-problem");
  clearProblem(problemBox, form);
  const picked = form.querySelector('input[name="rank"]:checked');
  const body = {
    rank: picked ? Number(picked.value) : 1,
    name: document.getElementById("experiment-name").value.trim(),
    channel: document.getElementById("channel").value.trim(),
  };
  const spend = optionalNumber("spend");
  if (spend !== undefined) body.spend = spend;
  try {
    const experiment = await api(`/v1/geo/market-selection/${jobId}/experiments`, {
      method: "POST",
      json: body,
      headers: { "Idempotency-Key": idempotencyKey() },
    });
    const status = document.getElementById("experiment-created");
    const link = Object.assign(document.createElement("a"), {
      href: `/app/experiment.html?id=${experiment.id}`,
      textContent: `"${experiment.name}"`,
    });
    status.replaceChildren(
      "Created ",
      link,
      ` (${experiment.status}) treating ${experiment.treatment_markets.join(", ")} from ` +
        `${experiment.test_period.start} to ${experiment.test_period.end}.`,
    );
  } catch (error) {
    showProblem(problemBox, error, form);
  }
}

function pairsRequest() {
  const request = {
    dataset_id: document.getElementById("pairs-dataset-id").value.trim(),
    budgets: parseNumberList(document.getElementById("budgets").value),
    target_iroas: optionalNumber("target-iroas"),
    pair_counts: parseNumberList(document.getElementById("pair-counts").value),
    simulations: optionalNumber("simulations"),
  };
  return withoutEmpty(request, { emptyLists: true });
}

function runPairs(event) {
  return runDesignJob(event, {
    ids: {
      submit: "pairs-submit",
      problem: "pairs-problem",
      results: "pair-designs",
      progress: "pairs-job-progress",
      bar: "pairs-job-bar",
      status: "pairs-job-status",
    },
    path: "/v1/geo/matched-pairs",
    request: pairsRequest,
    what: "The matched-pair design",
    show: showPairDesigns,
  });
}

async function showPairDesigns(result) {
  const rows = document.getElementById("pair-design-rows");
  rows.replaceChildren();
  for (const design of result.designs) {
    const first = design.budgets[0];
    const kept = design.pairs_kept === result.recommended ? `${design.pairs_kept} (recommended)` : String(design.pairs_kept);
    const row = document.createElement("tr");
    row.append(
      cell(kept),
      cell(first.minimum_detectable_iroas.toFixed(2)),
      cell(first.minimum_detectable_lift === null ? "—" : percent(first.minimum_detectable_lift)),
      cell(percent(design.share_of_spend, 0)),
      cell(design.treatment_markets.join(", ")),
    );
    rows.append(row);
  }
  const headings = [...document.querySelectorAll("#pair-designs thead th")].map((th) => th.textContent);
  for (const row of rows.rows) {
    for (const [index, td] of [...row.cells].entries()) td.dataset.label = headings[index];
  }
  const budget = result.designs.length ? whole(result.designs[0].budgets[0].budget) : "—";
  document.getElementById("pairs-summary").textContent =
    result.recommended === null
      ? "No design could be ranked."
      : `Recommended: ${result.recommended} pairs (the smallest error per share of spend). Table figures at a ` +
        `budget of ${budget}.`;
  document.getElementById("pair-designs").hidden = false;
  await drawChart(document.getElementById("pairs-chart"), result.chart);
}

document.getElementById("upload-form").addEventListener("submit", upload);
document.getElementById("pairs-form").addEventListener("submit", runPairs);
document.getElementById("selection-form").addEventListener("submit", runSelection);
document.getElementById("experiment-form").addEventListener("submit", createExperiment);
setUpKeyForm();
