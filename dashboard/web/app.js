// primer dashboard: the runs table, live charts (uPlot, fed by server-sent events), the
// start-run form and run detail. Every request carries the page's ?token= when it has one;
// every change carries the token the server put in the page, as the X-Primer-Token header.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const pageToken = document.querySelector('meta[name="primer-token"]').content;
const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
const api = (url, options) => fetch(withToken(url), options).then(async (r) => {
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
});
const post = (url, body) => api(url, {
  method: "POST",
  headers: { "Content-Type": "application/json", "X-Primer-Token": pageToken },
  body: JSON.stringify(body ?? {}),
});

const state = {
  runs: [],
  sort: { key: "id", ascending: true },
  selected: new Map(), // run id -> { records: [], source: EventSource }
};

const fmt = (v, digits) => v === undefined || v === null ? "" : typeof v === "number" ? +v.toFixed(digits ?? 4) : v;

function rowValue(run, key) {
  if (key === "valid_loss") return run.valid ? run.valid.loss : undefined;
  if (key === "valid_accuracy") return run.valid ? run.valid.accuracy : undefined;
  return run[key];
}

// Text from run directories (names, task paths) as HTML text, never markup.
const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function renderRuns() {
  const filter = document.getElementById("filter").value.toLowerCase();
  const { key, ascending } = state.sort;
  const runs = state.runs
    .filter((r) => JSON.stringify([r.id, r.kind, r.objective, r.status, r.backend, r.task]).toLowerCase().includes(filter))
    .sort((a, b) => {
      const x = rowValue(a, key), y = rowValue(b, key);
      const order = x === y ? 0 : x === undefined || x === null ? 1 : y === undefined || y === null ? -1 : x < y ? -1 : 1;
      return ascending ? order : -order;
    });
  const body = document.querySelector("#runs tbody");
  body.replaceChildren(...runs.map((run) => {
    const tr = document.createElement("tr");
    tr.dataset.run = run.id;
    const charted = run.kind !== "report";
    const box = charted ? `<input type="checkbox" data-testid="select" ${state.selected.has(run.id) ? "checked" : ""}>` : "";
    const steps = run.total_steps ? `${run.step}/${run.total_steps}` : run.step;
    const buttons = [
      run.status === "running" && run.kind === "pretrain" ? `<button data-action="stop" data-testid="stop">stop</button>` : "",
      run.status === "interrupted" && run.kind === "pretrain" ? `<button data-action="resume" data-testid="resume">resume</button>` : "",
      `<button data-action="detail">detail</button>`,
    ].join(" ");
    // A task given as a file shows its file name; the whole path is in the tooltip.
    const task = run.task ? ` <span title="${esc(run.task)}">${esc(run.task.split("/").pop())}</span>` : "";
    tr.innerHTML = `<td>${box}</td><td>${esc(run.id)}</td><td>${run.kind}${task}</td>
      <td>${esc(run.objective)}</td><td class="${run.status ?? ""}" data-testid="status">${run.status ?? "unknown"}</td>
      <td>${steps}</td><td>${run.tokens_seen ?? ""}</td><td>${fmt(rowValue(run, "valid_loss"))}</td>
      <td>${fmt(rowValue(run, "valid_accuracy"))}</td><td>${esc(run.backend)}</td><td>${fmt(run.elapsed_s, 0)}</td><td>${buttons}</td>`;
    return tr;
  }));
}

// A run's name in the chart legend, with its objective's label (`mlm:span`) when it has one.
function seriesLabel(id) {
  const run = state.runs.find((r) => r.id === id);
  return run && run.objective ? `${id} (${run.objective})` : id;
}

async function refreshRuns() {
  try {
    state.runs = await api("/api/runs");
    renderRuns();
  } catch (e) {
    console.error(e);
  }
}

// An objective's own metrics (ELECTRA's discriminator_auc, ...) become metrics of the record;
// every numeric field of a record, once seen, becomes a choice of the metric menu.
function withObjectiveMetrics(record) {
  const merged = { ...(record.objective_metrics || {}), ...record };
  const menu = document.getElementById("metric");
  for (const [key, value] of Object.entries(merged)) {
    if (key === "step" || typeof value !== "number") continue;
    if (![...menu.options].some((option) => option.value === key)) menu.add(new Option(key, key));
  }
  return merged;
}

function follow(id) {
  const entry = { records: [], source: null };
  const source = new EventSource(withToken("/api/events?run=" + encodeURIComponent(id)));
  source.addEventListener("metrics", (event) => {
    entry.records.push(...JSON.parse(event.data).records.map(withObjectiveMetrics));
    scheduleDraw();
  });
  source.addEventListener("status", () => refreshRuns());
  entry.source = source;
  state.selected.set(id, entry);
}

function unfollow(id) {
  const entry = state.selected.get(id);
  if (entry) entry.source.close();
  state.selected.delete(id);
  scheduleDraw();
}

let drawPending = false;
function scheduleDraw() {
  if (!drawPending) {
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; draw(); });
  }
}

let plot = null;
function draw() {
  const metric = document.getElementById("metric").value;
  const split = document.getElementById("split").value;
  const xKey = document.getElementById("xaxis").value;
  const alpha = +document.getElementById("smoothing").value;
  const logx = document.getElementById("logx").checked, logy = document.getElementById("logy").checked;
  document.getElementById("smoothing-value").textContent = alpha;
  const ids = [...state.selected.keys()];
  let points = 0;
  const tables = ids.map((id) => {
    const records = state.selected.get(id).records
      .filter((r) => r.split === split && typeof r[metric] === "number" && typeof r[xKey] === "number")
      .filter((r) => (!logx || r[xKey] > 0) && (!logy || r[metric] > 0));
    points += records.length;
    let smooth = null;
    const ys = records.map((r) => (smooth = smooth === null ? r[metric] : alpha * smooth + (1 - alpha) * r[metric]));
    return [records.map((r) => r[xKey]), ys];
  });
  document.getElementById("points").textContent = `${points} points from ${ids.length} run(s)`;
  document.getElementById("points").dataset.count = points;
  const chart = document.getElementById("chart");
  if (plot) { plot.destroy(); plot = null; }
  if (ids.length === 0) { chart.replaceChildren(); return; }
  const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  plot = new uPlot({
    width: chart.clientWidth || 640,
    height: 360,
    scales: { x: { time: false, distr: logx ? 3 : 1 }, y: { distr: logy ? 3 : 1 } },
    axes: [{ label: xKey }, { label: `${split} ${metric}` }],
    series: [{}, ...ids.map((id, i) => ({ label: seriesLabel(id), stroke: palette[i % palette.length], width: 2, spanGaps: true }))],
  }, data, chart);
}

// The chart follows its panel's width when the window (or the layout) changes.
new ResizeObserver(() => {
  const chart = document.getElementById("chart");
  if (plot && chart.clientWidth > 0 && chart.clientWidth !== plot.width) {
    plot.setSize({ width: chart.clientWidth, height: plot.height });
  }
}).observe(document.getElementById("chart"));

document.querySelector("#runs thead").addEventListener("click", (event) => {
  const key = event.target.dataset.key;
  if (!key) return;
  state.sort = { key, ascending: state.sort.key === key ? !state.sort.ascending : true };
  renderRuns();
});

document.querySelector("#runs tbody").addEventListener("click", async (event) => {
  const row = event.target.closest("tr");
  if (!row) return;
  const id = row.dataset.run;
  if (event.target.type === "checkbox") {
    event.target.checked ? follow(id) : unfollow(id);
    return;
  }
  const action = event.target.dataset.action;
  if (action === "stop" || action === "resume") {
    event.target.disabled = true;
    try { await post(`/api/${action}?run=${encodeURIComponent(id)}`); }
    catch (e) { alert(e.message); }
    refreshRuns();
  } else if (action === "detail") {
    showDetail(id);
  }
});

// One sample of samples.jsonl as text: a causal continuation (prompt ⟨continuation⟩) or a masked
// model's fills (each mask's hidden token, then its best guesses).
function sampleText(sample) {
  if (sample.kind === "generate") return `step ${sample.step}: ${sample.prompt}⟨${sample.text}⟩`;
  const fills = sample.masks.map((m, i) =>
    `  [MASK] ${i + 1} = ${JSON.stringify(m.answer)}: ` + m.predictions.map(([token, p]) => `${JSON.stringify(token)} ${p.toFixed(3)}`).join("  "));
  return [`step ${sample.step}: ${sample.text}`, ...fills].join("\n");
}

// The selected runs' configs side by side, only the keys that differ.
async function showDiff() {
  const pane = document.getElementById("config-diff");
  const ids = [...state.selected.keys()];
  if (ids.length < 2) {
    pane.textContent = "select two or more runs to compare their configs";
    return;
  }
  const diff = await api("/api/diff?runs=" + ids.map(encodeURIComponent).join(","));
  const head = `<tr><th>config key</th>${diff.runs.map((id) => `<th>${esc(id)}</th>`).join("")}</tr>`;
  const rows = diff.keys.map(({ key, values }) =>
    `<tr><td>${esc(key)}</td>${values.map((v) => `<td>${esc(JSON.stringify(v))}</td>`).join("")}</tr>`);
  pane.innerHTML = `<h3>${diff.keys.length} differing config keys</h3><div class="scroll"><table>${head}${rows.join("")}</table></div>`;
}

document.getElementById("diff").addEventListener("click", () => showDiff().catch((e) => {
  document.getElementById("config-diff").textContent = e.message;
}));

async function showDetail(id) {
  const detail = await api("/api/run?run=" + encodeURIComponent(id));
  const pane = document.getElementById("detail");
  const parts = [`<h3>${id}</h3>`];
  if (detail.report) {
    const url = withToken("/report?run=" + encodeURIComponent(id));
    parts.push(`<p><a href="${url}" target="_blank">open the comparison report in its own tab</a></p>`,
      `<iframe data-testid="report" src="${url}" style="width:100%;height:40em;border:1px solid #ddd"></iframe>`);
  }
  parts.push(`<p>status: ${detail.status ? detail.status.state : "none"}; checkpoints: ${detail.checkpoints.join(", ") || "none"}</p>`);
  const block = (title, testid) => `<h4>${title}</h4><pre data-testid="${testid}"></pre>`;
  parts.push(block("samples at each evaluation", "samples"), block("summary", "summary"), block("config", "config"),
    block("log (runs started here)", "log"));
  pane.innerHTML = parts.join("");
  const text = (testid, value) => { pane.querySelector(`[data-testid="${testid}"]`).textContent = value; };
  text("samples", detail.samples.length ? detail.samples.map(sampleText).join("\n\n") : "none yet");
  text("summary", JSON.stringify(detail.summary, null, 2));
  text("config", JSON.stringify(detail.config, null, 2));
  text("log", detail.log.join("\n"));
}

document.getElementById("start").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {};
  for (const [key, value] of form.entries()) {
    if (value === "") continue;
    const field = event.target.elements[key];
    const kind = field.dataset.kind;
    body[key] = kind === "integer" || kind === "number" ? Number(value) : kind === "bool" ? value === "true" : value;
  }
  const error = document.getElementById("form-error");
  error.textContent = "starting…";
  error.className = "ok";
  try {
    const { id } = await post("/api/runs", body);
    error.textContent = `started ${id}`;
    await refreshRuns();
    if (!state.selected.has(id)) follow(id);
    renderRuns();
  } catch (e) {
    error.className = "";
    error.textContent = e.message;
  }
});

for (const id of ["metric", "split", "xaxis", "smoothing", "logx", "logy"]) {
  document.getElementById(id).addEventListener("input", scheduleDraw);
}
document.getElementById("filter").addEventListener("input", renderRuns);

// The form's fields are primer's pre-training options, from its option schema: the common ones
// shown, the rest under "more options". An empty field leaves the option at its default (the
// placeholder). The objectives come from primer's registry.
const SHOWN_OPTIONS = ["objective", "corpus", "tokenizer-kind", "layers", "d-model", "heads", "seq-len",
  "batch-size", "steps", "eval-every", "backend"];

function optionField(spec, objectives) {
  const name = spec.key.replaceAll("-", "_");
  const defaultText = spec.default_text ? `default: ${spec.default_text}` : "";
  let field;
  if (spec.kind === "objective" || spec.kind === "choice" || spec.kind === "bool") {
    field = document.createElement("select");
    const values = spec.kind === "objective" ? objectives.map((o) => o.name)
      : spec.kind === "bool" ? ["true", "false"] : spec.choices;
    const choices = spec.kind === "objective" ? [] : [["", defaultText || "default"]];
    for (const [value, text] of [...choices, ...values.map((v) => [v, v])]) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      const objective = objectives.find((o) => o.name === value);
      if (spec.kind === "objective" && objective) option.title = objective.description;
      field.append(option);
    }
    if (spec.kind === "objective") field.dataset.testid = "objectives";
  } else {
    field = document.createElement("input");
    if (spec.kind === "integer" || spec.kind === "number") {
      field.type = "number";
      field.step = spec.kind === "integer" ? "1" : "any";
    }
    field.placeholder = spec.key === "corpus" ? "tinyshakespeare or a path" : defaultText;
    if (spec.key === "corpus") field.required = true;
  }
  field.name = name;
  field.dataset.kind = spec.kind;
  field.title = spec.help;
  const label = document.createElement("label");
  label.textContent = name;
  label.title = spec.help;
  return [label, field];
}

async function loadOptionFields() {
  const [schema, objectives] = await Promise.all([api("/api/options"), api("/api/objectives")]);
  const shown = document.getElementById("option-fields");
  const more = document.getElementById("more-option-fields");
  for (const key of SHOWN_OPTIONS) {
    const spec = schema.find((s) => s.key === key);
    if (spec) shown.append(...optionField(spec, objectives));
  }
  for (const spec of schema.filter((s) => !SHOWN_OPTIONS.includes(s.key))) {
    more.append(...optionField(spec, objectives));
  }
}

loadOptionFields().catch(console.error);
refreshRuns();
setInterval(refreshRuns, 3000);
