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
  // The table's columns: keys of a run's row (kind, status, ...) or of its fields (config.*,
  // summary.*, train.*, valid.*).
  columns: ["kind", "objective", "status", "step", "tokens_seen", "valid.loss", "valid.accuracy", "backend", "elapsed_s", "load"],
  groupBy: "",
  menuKeys: "", // the keys the column and group menus offer, to rebuild them only when they change
};

const COLUMN_LABELS = {
  id: "run", kind: "kind", objective: "objective", status: "status", step: "step", tokens_seen: "tokens",
  "valid.loss": "valid loss", "valid.accuracy": "valid acc", backend: "backend", elapsed_s: "time (s)",
  load: "cpu · memory · tokens/s",
};
const ROW_KEYS = ["id", "kind", "objective", "status", "step", "tokens_seen", "backend", "elapsed_s", "task", "total_steps"];

const fmt = (v, digits) => v === undefined || v === null ? "" : typeof v === "number" ? +v.toFixed(digits ?? 4) : v;

// A run's value of a column: a key of its row, or of its fields.
function value(run, key) {
  if (key === "load") return run.load ? run.load.cpu_percent : undefined;
  if (ROW_KEYS.includes(key)) return run[key];
  return run.fields ? run.fields[key] : undefined;
}

// Text from run directories (names, task paths) as HTML text, never markup.
const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// The filter: words match a run's name, kind, objective, status, backend or task; `key>N`,
// `key<=N`, `key=V`, `key!=V`, ... compare a column's value.
function matches(run, filter) {
  for (const term of filter.trim().split(/\s+/).filter(Boolean)) {
    const condition = term.match(/^([\w.\-]+)(>=|<=|!=|=|>|<)(.*)$/);
    if (!condition) {
      const text = JSON.stringify([run.id, run.kind, run.objective, run.status, run.backend, run.task]).toLowerCase();
      if (!text.includes(term.toLowerCase())) return false;
      continue;
    }
    const [, key, op, wanted] = condition;
    const have = value(run, key);
    if (have === undefined || have === null) return false;
    const [x, y] = typeof have === "number" && wanted !== "" && !isNaN(+wanted) ? [have, +wanted] : [String(have).toLowerCase(), wanted.toLowerCase()];
    const holds = { ">": x > y, "<": x < y, ">=": x >= y, "<=": x <= y, "=": x === y, "!=": x !== y }[op];
    if (!holds) return false;
  }
  return true;
}

function compare(x, y) {
  return x === y ? 0 : x === undefined || x === null ? 1 : y === undefined || y === null ? -1 : x < y ? -1 : 1;
}

// One cell of a run's row.
function cell(run, key) {
  if (key === "kind") {
    // A task given as a file shows its file name; the whole path is in the tooltip.
    const task = run.task ? ` <span title="${esc(run.task)}">${esc(run.task.split("/").pop())}</span>` : "";
    return `<td>${esc(run.kind)}${task}</td>`;
  }
  if (key === "status") return `<td class="${esc(run.status)}" data-testid="status">${esc(run.status ?? "unknown")}</td>`;
  if (key === "step") return `<td>${run.total_steps ? `${run.step}/${run.total_steps}` : run.step}</td>`;
  if (key === "elapsed_s") return `<td>${fmt(run.elapsed_s, 0)}</td>`;
  if (key === "load") {
    if (!run.load) return "<td></td>";
    const speed = run.fields && run.fields["train.tokens_per_s"];
    return `<td data-testid="load">${run.load.cpu_percent}% · ${Math.round(run.load.rss_mib)} MiB${speed ? ` · ${Math.round(speed)}/s` : ""}</td>`;
  }
  const v = value(run, key);
  return `<td>${esc(typeof v === "object" && v !== null ? JSON.stringify(v) : fmt(v))}</td>`;
}

function runRow(run) {
  const tr = document.createElement("tr");
  tr.dataset.run = run.id;
  const charted = run.kind !== "report";
  const box = charted ? `<input type="checkbox" data-testid="select" ${state.selected.has(run.id) ? "checked" : ""}>` : "";
  const resumable = run.kind === "pretrain" || run.kind === "report";
  const buttons = [
    run.status === "running" && resumable ? `<button data-action="stop" data-testid="stop">stop</button>` : "",
    run.status === "interrupted" && resumable ? `<button data-action="resume" data-testid="resume">resume</button>` : "",
    `<button data-action="detail">detail</button>`,
  ].join(" ");
  tr.innerHTML = `<td>${box}</td><td>${esc(run.id)}</td>${state.columns.map((key) => cell(run, key)).join("")}<td>${buttons}</td>`;
  return tr;
}

// A group's heading row: its value, its size, and each numeric column's mean ± standard deviation.
function groupRow(group, runs) {
  const tr = document.createElement("tr");
  tr.className = "group";
  tr.dataset.group = group;
  const stats = state.columns.map((key) => {
    const xs = runs.map((run) => value(run, key)).filter((v) => typeof v === "number");
    if (xs.length === 0) return "<td></td>";
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
    return `<td data-testid="group-stat" title="mean ± standard deviation of ${xs.length}">${fmt(mean)} ± ${fmt(sd)}</td>`;
  });
  tr.innerHTML = `<td></td><td data-testid="group-name">${esc(state.groupBy)} = ${esc(group)} (${runs.length} runs)</td>${stats.join("")}<td></td>`;
  return tr;
}

function renderHead() {
  const head = document.querySelector("#runs thead");
  const sortMark = (key) => state.sort.key === key ? (state.sort.ascending ? " ▲" : " ▼") : "";
  const th = (key, removable) => `<th><span data-sort="${esc(key)}" title="${esc(key)}">${esc(COLUMN_LABELS[key] ?? key)}${sortMark(key)}</span>` +
    (removable ? `<button class="remove" data-remove="${esc(key)}" title="remove this column">×</button>` : "") + "</th>";
  head.innerHTML = `<tr><th></th>${th("id", false)}${state.columns.map((key) => th(key, true)).join("")}<th></th></tr>`;
}

// The column and group menus offer every key some run has.
function renderMenus() {
  const keys = new Set(["kind", "objective", "status", "backend", "step", "tokens_seen", "elapsed_s", "load"]);
  for (const run of state.runs) for (const key of Object.keys(run.fields || {})) keys.add(key);
  const sorted = [...keys].sort();
  if (sorted.join("\n") === state.menuKeys) return;
  state.menuKeys = sorted.join("\n");
  for (const [id, first] of [["add-column", "choose…"], ["group-by", "none"]]) {
    const menu = document.getElementById(id);
    const chosen = menu.value;
    menu.replaceChildren(new Option(first, ""), ...sorted.map((key) => new Option(key, key)));
    menu.value = chosen;
  }
}

function renderRuns() {
  renderHead();
  renderMenus();
  const filter = document.getElementById("filter").value;
  const { key, ascending } = state.sort;
  const runs = state.runs.filter((run) => matches(run, filter))
    .sort((a, b) => (ascending ? 1 : -1) * compare(value(a, key), value(b, key)));
  const body = document.querySelector("#runs tbody");
  if (!state.groupBy) {
    body.replaceChildren(...runs.map(runRow));
    return;
  }
  const groups = new Map();
  for (const run of runs) {
    const group = String(value(run, state.groupBy) ?? "(none)");
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(run);
  }
  body.replaceChildren(...[...groups.keys()].sort().flatMap((group) => [groupRow(group, groups.get(group)), ...groups.get(group).map(runRow)]));
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
  const { sort, remove } = event.target.dataset;
  if (sort) state.sort = { key: sort, ascending: state.sort.key === sort ? !state.sort.ascending : true };
  if (remove) state.columns = state.columns.filter((key) => key !== remove);
  if (sort || remove) renderRuns();
});
document.getElementById("add-column").addEventListener("change", (event) => {
  const key = event.target.value;
  if (key && !state.columns.includes(key)) state.columns.push(key);
  event.target.value = "";
  renderRuns();
});
document.getElementById("group-by").addEventListener("change", (event) => {
  state.groupBy = event.target.value;
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

// A comparison's jobs, each done, running or pending, and its ETA.
function progressTable(progress) {
  const eta = progress.eta_s === null || progress.eta_s === undefined ? "ETA after the first job"
    : progress.eta_s === 0 ? "all done" : `about ${Math.round(progress.eta_s)} s left`;
  const rows = progress.jobs.map((job) => `<tr><td>${esc(job.what)}</td><td class="${esc(job.state)}">${esc(job.state)}</td></tr>`);
  return `<h4 data-testid="progress-summary">${progress.done} of ${progress.total} jobs done; ${eta}</h4>` +
    `<div class="scroll"><table data-testid="progress"><tr><th>job</th><th>state</th></tr>${rows.join("")}</table></div>`;
}

let detailShown = null;
async function showDetail(id) {
  detailShown = id;
  const detail = await api("/api/run?run=" + encodeURIComponent(id));
  const pane = document.getElementById("detail");
  const parts = [`<h3>${esc(id)}</h3>`];
  if (detail.progress) parts.push(progressTable(detail.progress));
  if (detail.report) {
    const url = withToken("/report?run=" + encodeURIComponent(id));
    parts.push(`<p><a href="${url}" target="_blank">open the comparison report in its own tab</a></p>`,
      `<iframe data-testid="report" src="${url}" style="width:100%;height:40em;border:1px solid #ddd"></iframe>`);
  }
  parts.push(`<p>status: ${esc(detail.status ? detail.status.state : detail.info?.status ?? "none")}; checkpoints: ${esc(detail.checkpoints.join(", ") || "none")}</p>`);
  const block = (title, testid) => `<h4>${title}</h4><pre data-testid="${testid}"></pre>`;
  parts.push(block("samples at each evaluation", "samples"), block("summary", "summary"), block("config", "config"),
    block(`log of job ${detail.job ?? "(none started here)"}`, "log"));
  pane.innerHTML = parts.join("");
  const text = (testid, value) => { pane.querySelector(`[data-testid="${testid}"]`).textContent = value; };
  text("samples", detail.samples.length ? detail.samples.map(sampleText).join("\n\n") : "none yet");
  text("summary", JSON.stringify(detail.summary, null, 2));
  text("config", JSON.stringify(detail.config, null, 2));
  text("log", detail.log.join("\n"));
}

// A running comparison's detail follows its progress.
setInterval(() => {
  const run = state.runs.find((r) => r.id === detailShown);
  if (run && run.kind === "report" && run.status === "running") showDetail(detailShown).catch(console.error);
}, 3000);

for (const id of ["metric", "split", "xaxis", "smoothing", "logx", "logy"]) {
  document.getElementById(id).addEventListener("input", scheduleDraw);
}
document.getElementById("filter").addEventListener("input", renderRuns);

// The job form: the chosen command's options, as primer's CLI declares them (/api/commands).
// The common ones are shown, the rest under "more options"; an empty field leaves the option at
// its default (the placeholder).
const SHOWN_OPTIONS = {
  pretrain: ["out", "objective", "corpus", "tokenizer-kind", "layers", "d-model", "heads", "seq-len", "batch-size", "steps", "eval-every", "backend"],
  finetune: ["from", "task", "out", "freeze-encoder", "from-scratch", "epochs", "train-limit", "backend"],
  compare: ["out", "corpus", "objectives", "task", "seeds", "steps", "label-budgets", "backend"],
};
const jobs = { commands: [], objectives: [] };

function optionField(spec) {
  const wrap = document.createElement("div");
  wrap.className = "field" + (spec.kind === "flag" ? " flag" : "");
  const defaultText = spec.default_text ? `default: ${spec.default_text}` : "";
  let field;
  if (spec.kind === "flag") {
    field = document.createElement("input");
    field.type = "checkbox";
  } else if (spec.kind === "choice" || spec.kind === "bool" || (spec.kind === "objective" && !spec.list)) {
    field = document.createElement("select");
    const values = spec.kind === "bool" ? ["true", "false"] : spec.choices;
    const first = [["", defaultText || (spec.kind === "objective" ? "none" : "default")]];
    for (const [v, text] of [...first, ...values.map((v) => [v, v])]) {
      const option = new Option(text, v);
      const objective = jobs.objectives.find((o) => o.name === v);
      if (spec.kind === "objective" && objective) option.title = objective.description;
      field.append(option);
    }
  } else {
    field = document.createElement("input");
    if (spec.kind === "integer" || spec.kind === "number") {
      field.type = "number";
      field.step = spec.kind === "integer" ? "1" : "any";
    }
    field.placeholder = spec.list ? `${defaultText || "a,b,…"}` : defaultText || spec.kind;
    field.required = spec.required;
  }
  field.name = spec.key;
  field.dataset.kind = spec.kind;
  field.title = spec.help;
  const label = document.createElement("label");
  label.textContent = spec.key + (spec.required ? " *" : "");
  label.title = spec.help;
  const error = document.createElement("span");
  error.className = "field-error";
  error.dataset.testid = `error-${spec.key}`;
  if (spec.kind === "flag") wrap.append(field, label, error);
  else wrap.append(label, field, error);
  return wrap;
}

function showCommand(name) {
  const command = jobs.commands.find((c) => c.name === name);
  document.getElementById("job-about").textContent = command.about;
  const shown = SHOWN_OPTIONS[name] ?? [];
  const common = (spec) => spec.required || spec.positional || shown.includes(spec.key) || ["out", "run", "from"].includes(spec.key);
  document.getElementById("job-fields").replaceChildren(...command.options.filter(common).map(optionField));
  document.getElementById("more-job-fields").replaceChildren(...command.options.filter((s) => !common(s)).map(optionField));
  document.getElementById("job-message").textContent = "";
}

// The CLI's error names the option at fault (`--heads`): it is shown beside that field too.
function showJobError(message) {
  const line = document.getElementById("job-message");
  line.className = "";
  line.textContent = message;
  const form = document.getElementById("job-form");
  for (const flag of message.matchAll(/--([a-z0-9-]+)/g)) {
    const error = form.querySelector(`[data-testid="error-${flag[1]}"]`);
    if (error) error.textContent = message;
  }
}

document.getElementById("job-command").addEventListener("change", (event) => showCommand(event.target.value));

document.getElementById("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const command = document.getElementById("job-command").value;
  const options = {};
  for (const field of form.querySelectorAll("[name]")) {
    const kind = field.dataset.kind;
    if (kind === "flag") { if (field.checked) options[field.name] = true; continue; }
    if (field.value === "") continue;
    options[field.name] = kind === "integer" || kind === "number" ? Number(field.value) : kind === "bool" ? field.value === "true" : field.value;
  }
  form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  const line = document.getElementById("job-message");
  line.className = "ok";
  line.textContent = "checking…";
  try {
    const reply = await post("/api/jobs", { command, options });
    const what = `job ${reply.job}${reply.id ? `: ${reply.id}` : ""}`;
    line.textContent = reply.state === "queued" ? `queued ${what} (place ${reply.place})` : `started ${what}`;
    await Promise.all([refreshRuns(), refreshQueue()]);
    const started = reply.state !== "queued";
    if (started && reply.id && command === "pretrain" && !state.selected.has(reply.id)) { follow(reply.id); renderRuns(); }
  } catch (e) {
    showJobError(e.message);
  }
});

// The queue: queued jobs in their order (move up, move down, cancel), running ones with their
// CPU and memory, ended ones newest first with their errors; each job's log on demand.
function queueRow(job) {
  const tr = document.createElement("tr");
  tr.dataset.job = job.id;
  const load = job.load ? [`${job.load.cpu_percent}%`, `${Math.round(job.load.rss_mib)} MiB`] : ["", ""];
  const actions = [
    job.state === "queued" ? `<button data-action="up" title="start earlier">↑</button><button data-action="down" title="start later">↓</button>` : "",
    job.state === "queued" || job.state === "running" ? `<button data-action="cancel" data-testid="cancel">cancel</button>` : "",
    `<button data-action="log">log</button>`,
  ].join(" ");
  const state = job.error ? `<span title="${esc(job.error)}">${job.state}</span>` : job.state;
  tr.innerHTML = `<td>${job.id}</td><td>${esc(job.command)}</td><td>${esc(job.run ?? "")}</td>
    <td class="${job.state}" data-testid="job-state">${state}</td><td data-testid="place">${job.place ?? ""}</td>
    <td>${load[0]}</td><td>${load[1]}</td><td>${actions}</td>`;
  return tr;
}

async function refreshQueue() {
  try {
    const queue = await api("/api/queue");
    const order = { running: 0, queued: 1 };
    const jobsShown = queue.jobs.slice().sort((a, b) =>
      (order[a.state] ?? 2) - (order[b.state] ?? 2) || (a.state === "queued" ? a.place - b.place : b.id - a.id));
    document.querySelector("#queue tbody").replaceChildren(...jobsShown.map(queueRow));
    const limit = document.getElementById("limit");
    if (document.activeElement !== limit) limit.value = queue.limit;
    const m = queue.machine;
    const gib = (mib) => (mib / 1024).toFixed(1);
    document.getElementById("machine").textContent = `${m.cpus} CPUs, load ${m.load_average.map((l) => l.toFixed(2)).join(" ")}` +
      (m.memory_total_mib ? `, memory ${gib(m.memory_total_mib - m.memory_available_mib)} of ${gib(m.memory_total_mib)} GiB in use` : "");
  } catch (e) {
    console.error(e);
  }
}

document.querySelector("#queue tbody").addEventListener("click", async (event) => {
  const row = event.target.closest("tr");
  const action = event.target.dataset.action;
  if (!row || !action) return;
  const job = row.dataset.job;
  const place = Number(row.querySelector("[data-testid=place]").textContent);
  try {
    if (action === "cancel") await post(`/api/jobs/cancel?job=${job}`);
    if (action === "up") await post(`/api/jobs/move?job=${job}&place=${Math.max(1, place - 1)}`);
    if (action === "down") await post(`/api/jobs/move?job=${job}&place=${place + 1}`);
    if (action === "log") {
      const log = document.getElementById("job-log");
      log.hidden = false;
      log.textContent = `job ${job}:\n` + (await api(`/api/jobs/log?job=${job}`)).log.join("\n");
    }
  } catch (e) {
    alert(e.message);
  }
  refreshQueue();
});

document.getElementById("set-limit").addEventListener("click", async () => {
  try { await post("/api/queue/limit", { limit: Number(document.getElementById("limit").value) }); }
  catch (e) { alert(e.message); }
  refreshQueue();
});

async function loadCommands() {
  [jobs.commands, jobs.objectives] = await Promise.all([api("/api/commands"), api("/api/objectives")]);
  const menu = document.getElementById("job-command");
  menu.replaceChildren(...jobs.commands.map((c) => new Option(c.name, c.name)));
  showCommand(menu.value);
}

loadCommands().catch(console.error);
refreshRuns();
refreshQueue();
setInterval(refreshRuns, 3000);
setInterval(refreshQueue, 2000);
