// Shared by every /app page: the API key, calls to /v1 with problem+json errors, and charts.
const KEY_STORAGE = "counterfact.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

/** Wires the header's key form: the key lives in sessionStorage for this tab only. */
export function setUpKeyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const status = document.getElementById("key-status");
  input.value = apiKey();
  status.textContent = apiKey() ? "Key saved for this tab." : "No key yet: paste an API key.";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    status.textContent = input.value.trim() ? "Key saved for this tab." : "Key cleared.";
  });
}

/** An error answered by the API as application/problem+json (RFC 9457). */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Calls the API; resolves to the decoded JSON body, rejects with an ApiProblem. */
export async function api(path, { method = "GET", json, body, contentType, headers = {} } = {}) {
  const sent = { Authorization: `Bearer ${apiKey()}`, Accept: "application/json", ...headers };
  let payload = body;
  if (json !== undefined) {
    payload = JSON.stringify(json);
    sent["Content-Type"] = "application/json";
  } else if (contentType) {
    sent["Content-Type"] = contentType;
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: payload });
  } catch (error) {
    throw new ApiProblem(0, { title: "Network error", detail: `The API could not be reached (${error.message}).` });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { title: response.statusText, detail: text };
  }
  if (!response.ok) {
    throw new ApiProblem(response.status, data || { title: response.statusText });
  }
  return data;
}

/** Clears the error box and every field marked invalid in `form`. */
export function clearProblem(box, form) {
  box.hidden = true;
  box.replaceChildren();
  if (form) {
    for (const field of form.querySelectorAll("[aria-invalid]")) {
      field.removeAttribute("aria-invalid");
    }
  }
}

/**
 * Shows an ApiProblem in `box` (role="alert"): the detail, then each invalid field by its label and API name.
 * Form controls carry `data-field` with the API's field name; the first invalid one is marked and focused.
 */
export function showProblem(box, error, form) {
  clearProblem(box, form);
  const problem = error.problem || { title: "Error", detail: String(error.message || error) };
  const heading = document.createElement("p");
  heading.className = "problem-title";
  const status = error.status ? ` (${error.status})` : "";
  heading.textContent = `${problem.title || "Error"}${status}: ${problem.detail || ""}`;
  box.append(heading);
  const params = problem.invalid_params || [];
  if (params.length) {
    const list = document.createElement("ul");
    let first = null;
    for (const param of params) {
      const control = form ? findControl(form, param.name) : null;
      const label = control ? labelOf(control) : null;
      const item = document.createElement("li");
      item.textContent = label ? `${label} (${param.name}): ${param.reason}` : `${param.name}: ${param.reason}`;
      list.append(item);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        first = first || control;
      }
    }
    box.append(list);
    if (first) first.focus();
  }
  box.hidden = false;
}

function findControl(form, name) {
  const bare = String(name).replace(/^\$\.?/, "").replace(/\[\d+\]/g, "");
  for (const control of form.querySelectorAll("[data-field]")) {
    const field = control.dataset.field;
    if (field === bare || bare.startsWith(`${field}.`)) return control;
  }
  return null;
}

function labelOf(control) {
  const label = control.labels && control.labels[0];
  return label ? label.firstChild.textContent.trim() : control.name;
}

const NARROW = 560; // px: below this a chart's legend goes under the plot, not beside it
const EMBED_OPTIONS = { actions: false, renderer: "svg" };
const watched = new WeakMap(); // chart element -> the spec it draws, redrawn when its width changes
const embeds = new WeakMap(); // chart element -> its vega-embed result, finalized before a redraw
const queues = new WeakMap(); // chart element -> its last draw, so that draws never overlap

function narrowConfig(element, spec) {
  if (element.clientWidth >= NARROW) return spec.config || {};
  const config = spec.config || {};
  return { ...config, legend: { ...(config.legend || {}), orient: "bottom", direction: "vertical" } };
}

/** A single or layered view: Vega-Lite fits it to the container (and follows the container's width). */
async function drawSingle(element, spec) {
  const fitted = {
    ...spec,
    width: "container",
    autosize: { type: "fit-x", contains: "padding" },
    config: narrowConfig(element, spec),
  };
  embeds.set(element, await window.vegaEmbed(element, fitted, EMBED_OPTIONS));
}

/**
 * Views stacked with `vconcat` (a result and its backtest): Vega-Lite cannot fit those to a container, so each
 * view's width is set from the container's, then narrowed by whatever the drawing still overflows.
 */
async function drawStacked(element, spec) {
  const config = narrowConfig(element, spec);
  const legendBeside = element.clientWidth >= NARROW;
  let width = element.clientWidth - 80 - (legendBeside ? 180 : 0);
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const views = spec.vconcat.map((view) => ({ ...view, width: Math.max(100, Math.floor(width)) }));
    clear(element);
    embeds.set(element, await window.vegaEmbed(element, { ...spec, vconcat: views, config }, EMBED_OPTIONS));
    const svg = element.querySelector("svg");
    const overflow = svg ? svg.getBoundingClientRect().width - element.clientWidth : 0;
    if (overflow <= 0.5 || width <= 100) return;
    width -= overflow;
  }
}

function clear(element) {
  const previous = embeds.get(element);
  if (previous) previous.finalize(); // its listeners (window resize) go with it
  embeds.delete(element);
  element.replaceChildren();
}

function draw(element, spec) {
  const drawn = (queues.get(element) || Promise.resolve()).then(async () => {
    element.dataset.width = String(element.clientWidth);
    clear(element);
    if (Array.isArray(spec.vconcat)) await drawStacked(element, spec);
    else await drawSingle(element, spec);
    element.dataset.rendered = "true";
  });
  queues.set(element, drawn.catch(() => {}));
  return drawn;
}

const resizes = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const element = entry.target;
    const spec = watched.get(element);
    // A hidden chart (width 0) waits until it is shown again.
    if (spec && element.clientWidth > 0 && String(element.clientWidth) !== element.dataset.width) {
      element.dataset.rendered = "false";
      draw(element, spec);
    }
  }
});

/**
 * Draws one of the API's Vega-Lite specs into `element`, as wide as its container, and again when that width
 * changes. Only the width (and, on a narrow screen, the legend's place) is changed: the spec is the API's.
 */
export async function drawChart(element, spec) {
  watched.set(element, spec);
  resizes.observe(element);
  await draw(element, spec);
}

/** A form field's number, or `undefined` when it is empty (so that the API's default applies). */
export function optionalNumber(id) {
  const text = document.getElementById(id).value.trim();
  return text === "" ? undefined : Number(text);
}

/** `request` without its `undefined` fields (and, with `emptyLists`, without its empty lists): what a form left
 * empty is not sent, so the API's defaults apply. */
export function withoutEmpty(request, { emptyLists = false } = {}) {
  for (const [key, value] of Object.entries(request)) {
    if (value === undefined || (emptyLists && Array.isArray(value) && !value.length)) delete request[key];
  }
  return request;
}

export function parseNumberList(text) {
  return text
    .split(/[,\s]+/)
    .filter(Boolean)
    .map(Number);
}

export function parseNameList(text) {
  return text
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
}

export function percent(value, digits = 1) {
  return `${(value * 100).toFixed(digits)}%`;
}

export function whole(value) {
  return Math.round(value).toLocaleString("en-US");
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

const POLL_MILLISECONDS = 500;

/** Whether an answer is a job (a `202`'s body) rather than the result itself. */
export function isJob(answer) {
  return answer !== null && typeof answer === "object" && "subject" in answer && "progress" in answer;
}

/** Polls GET /v1/jobs/{id} until the job has finished, showing its progress in `bar` and `status`. */
export async function followJob(job, bar, status) {
  let current = job;
  for (;;) {
    bar.value = current.progress;
    status.textContent = `Job ${current.id}: ${current.status}, ${percent(current.progress, 0)} done.`;
    if (!["queued", "running"].includes(current.status)) return current;
    await new Promise((resolve) => setTimeout(resolve, POLL_MILLISECONDS));
    current = await api(`/v1/jobs/${current.id}`);
  }
}

/** The problem a job that did not succeed ends with, in the shape `showProblem` takes. */
export function jobProblem(job, what) {
  const error = job.error || { title: `Job ${job.status}`, detail: `${what} did not finish.` };
  return { status: error.status, problem: error };
}
