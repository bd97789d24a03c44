// An experiment's results: a holdout test's lift per channel (forest plot and decisions), a geo test's
// observed vs counterfactual series with its band, or each cell's of a multi-cell geo test; charts as the API
// draws them.
import {
  api,
  clearProblem,
  drawChart,
  followJob,
  isJob,
  jobProblem,
  percent,
  setUpKeyForm,
  showProblem,
  whole,
} from "./common.js";

const form = document.getElementById("lookup-form");
const problemBox = document.getElementById("lookup-problem");
const idInput = document.getElementById("experiment-id");

function interval(value, format) {
  const bound = (x) => (x === null || x === undefined ? "unbounded" : format(x));
  return `${format(value.estimate)} (${bound(value.ci_low)} to ${bound(value.ci_high)})`;
}

function signedPercent(x) {
  return `${x >= 0 ? "+" : ""}${percent(x)}`;
}

function table(headings, rows) {
  const element = document.createElement("table");
  element.className = "stacks";
  const head = element.createTHead().insertRow();
  for (const heading of headings) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = heading;
    head.append(th);
  }
  const body = element.createTBody();
  for (const cells of rows) {
    const row = body.insertRow();
    for (const [index, content] of cells.entries()) {
      const td = row.insertCell();
      td.dataset.label = headings[index];
      if (content instanceof Node) td.append(content);
      else td.textContent = content;
    }
  }
  return element;
}

function decisionCell(decision) {
  const wrap = document.createElement("span");
  const action = Object.assign(document.createElement("span"), { className: "decision", textContent: decision.action });
  wrap.append(action, ": ", decision.reason);
  return wrap;
}

// A holdout test's dates as its results state them: the days it ran, else its plan.
function holdoutDates(dates) {
  if (!dates) return "No dates yet: start the test (status running), or state its planned or actual period.";
  const days = Math.round((Date.parse(dates.end) - Date.parse(dates.start)) / 86_400_000) + 1;
  const span = `${dates.start} to ${dates.end} (${days} ${days === 1 ? "day" : "days"})`;
  if (dates.basis === "actual") return `Ran ${span}.`;
  if (dates.basis === "so_far") return `Running since ${dates.start}: ${span} so far.`;
  return `Planned for ${span}; no actual dates yet.`;
}

function showDates(results) {
  const element = document.getElementById("results-dates");
  element.hidden = results.kind !== "holdout";
  element.textContent = results.kind === "holdout" ? holdoutDates(results.test_dates) : "";
}

function showHoldout(results) {
  const level = percent(results.confidence_level, 0);
  document.getElementById("results-summary").textContent =
    `Relative lift per channel with ${level} confidence intervals, and what to do about each.`;
  document.getElementById("results-chart").setAttribute("aria-label", `Forest plot of relative lift per channel, ${level} intervals`);
  const rows = results.channels.map((channel) => [
    channel.channel,
    interval(channel.lift.relative, signedPercent),
    channel.p_value_adjusted === null ? "—" : channel.p_value_adjusted.toFixed(3),
    decisionCell(channel.decision),
  ]);
  document
    .getElementById("results-table-wrap")
    .replaceChildren(table(["Channel", `Relative lift (${level} CI)`, "p (adjusted)", "Decision"], rows));
  return results.channels.flatMap((channel) => channel.warnings.map((text) => `${channel.channel}: ${text}`));
}

function showGeo(results) {
  const level = percent(results.confidence_level, 0);
  document.getElementById("results-summary").textContent =
    `Treated markets' KPI against the counterfactual the controls predict, with its ${level} band over the test.`;
  document
    .getElementById("results-chart")
    .setAttribute("aria-label", `Observed KPI against the counterfactual with its ${level} band`);
  const rows = [
    ["Relative lift", interval(results.lift.relative, signedPercent)],
    ["Incremental KPI", interval(results.incremental, whole)],
    ["p-value", results.p_value === null ? "—" : results.p_value.toFixed(3)],
  ];
  if (results.iroas) rows.push(["iROAS", interval(results.iroas, (x) => x.toFixed(2))]);
  document.getElementById("results-table-wrap").replaceChildren(table(["Figure", `Estimate (${level} CI)`], rows));
  return results.warnings;
}

function showCells(results) {
  const level = percent(results.confidence_level, 0);
  const names = results.cells.map((cell) => cell.name).join(", ");
  document.getElementById("results-summary").textContent =
    `Each cell's treated markets against the counterfactual the untreated markets predict (cells ${names}), ` +
    `with ${level} intervals.`;
  document
    .getElementById("results-chart")
    .setAttribute("aria-label", `Observed KPI against the counterfactual, one colour per cell (${names})`);
  const rows = results.cells.map((cell) => [
    cell.name,
    cell.treatment_markets.join(", "),
    interval(cell.results.lift.relative, signedPercent),
    interval(cell.results.incremental, whole),
    cell.results.iroas ? interval(cell.results.iroas, (x) => x.toFixed(2)) : "—",
    cell.results.p_value === null ? "—" : cell.results.p_value.toFixed(3),
  ]);
  const cellTable = table(
    ["Cell", "Markets", `Relative lift (${level} CI)`, "Incremental KPI", "iROAS", "p-value"],
    rows,
  );
  const compared = results.comparisons.map((c) => [
    `${c.first} vs ${c.second}`,
    c.compared === "iroas" ? "iROAS" : "relative lift",
    interval(c.difference, c.compared === "iroas" ? (x) => x.toFixed(2) : signedPercent),
    c.p_value === null ? "—" : c.p_value.toFixed(3),
  ]);
  const wrap = document.getElementById("results-table-wrap");
  wrap.replaceChildren(cellTable);
  if (compared.length) {
    wrap.append(table(["Cells compared", "On", `Difference (${level} CI)`, "p-value"], compared));
  }
  return [
    ...results.warnings,
    ...results.cells.flatMap((cell) => cell.results.warnings.map((text) => `${cell.name}: ${text}`)),
  ];
}

function show(results) {
  if (results.kind === "geo_cells") return showCells(results);
  if (results.kind === "geo") return showGeo(results);
  return showHoldout(results);
}

async function load(id) {
  clearProblem(problemBox, form);
  const section = document.getElementById("results");
  section.hidden = true;
  try {
    const experiment = await api(`/v1/experiments/${encodeURIComponent(id)}`);
    let results = await api(`/v1/experiments/${encodeURIComponent(id)}/results`);
    if (isJob(results)) {
      // A long computation became a job (202): follow it to its result.
      const progress = document.getElementById("job-progress");
      progress.hidden = false;
      const finished = await followJob(results, document.getElementById("job-bar"), document.getElementById("job-status"));
      progress.hidden = true;
      if (finished.status !== "succeeded") {
        showProblem(problemBox, jobProblem(finished, "The results computation"), form);
        return;
      }
      results = finished.result;
    }
    document.getElementById("results-title").textContent = `${experiment.name} (${experiment.kind}, ${experiment.status})`;
    showDates(results);
    const warnings = show(results);
    document
      .getElementById("results-warnings")
      .replaceChildren(...warnings.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    section.hidden = false;
    await drawChart(document.getElementById("results-chart"), results.chart);
  } catch (error) {
    showProblem(problemBox, error, form);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = idInput.value.trim();
  history.replaceState(null, "", `?id=${encodeURIComponent(id)}`);
  load(id);
});
setUpKeyForm();
const fromAddress = new URLSearchParams(location.search).get("id");
if (fromAddress) {
  idInput.value = fromAddress;
  load(fromAddress);
}
