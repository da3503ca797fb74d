// The runs table: the runs under the dashboard's directory, filtered, sorted, grouped, with the
// columns chosen; each row charts its run (its box), stops or resumes it, or shows its detail.

import { api, post } from "./api.js";
import { follow, unfollow } from "./chart.js";
import { showDetail } from "./detail.js";
import { esc, fmt } from "./format.js";
import { state } from "./state.js";

const COLUMN_LABELS = {
  id: "run", kind: "kind", objective: "objective", status: "status", step: "step", tokens_seen: "tokens",
  "valid.loss": "valid loss", "valid.accuracy": "valid acc", backend: "backend", elapsed_s: "time (s)",
  load: "cpu · memory · tokens/s",
};
const ROW_KEYS = ["id", "kind", "objective", "status", "step", "tokens_seen", "backend", "elapsed_s", "task", "total_steps"];

// How the table shows the runs.
const view = {
  sort: { key: "id", ascending: true },
  // The table's columns: keys of a run's row (kind, status, ...) or of its fields (config.*,
  // summary.*, train.*, valid.*).
  columns: ["kind", "objective", "status", "step", "tokens_seen", "valid.loss", "valid.accuracy", "backend", "elapsed_s", "load"],
  groupBy: "",
  menuKeys: "", // the keys the column and group menus offer, to rebuild them only when they change
};

// A run's value of a column: a key of its row, or of its fields.
function value(run, key) {
  if (key === "load") return run.load ? run.load.cpu_percent : undefined;
  if (ROW_KEYS.includes(key)) return run[key];
  return run.fields ? run.fields[key] : undefined;
}

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
  tr.innerHTML = `<td>${box}</td><td>${esc(run.id)}</td>${view.columns.map((key) => cell(run, key)).join("")}<td>${buttons}</td>`;
  return tr;
}

// A group's heading row: its value, its size, and each numeric column's mean ± standard deviation.
function groupRow(group, runs) {
  const tr = document.createElement("tr");
  tr.className = "group";
  tr.dataset.group = group;
  const stats = view.columns.map((key) => {
    const xs = runs.map((run) => value(run, key)).filter((v) => typeof v === "number");
    if (xs.length === 0) return "<td></td>";
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
    return `<td data-testid="group-stat" title="mean ± standard deviation of ${xs.length}">${fmt(mean)} ± ${fmt(sd)}</td>`;
  });
  tr.innerHTML = `<td></td><td data-testid="group-name">${esc(view.groupBy)} = ${esc(group)} (${runs.length} runs)</td>${stats.join("")}<td></td>`;
  return tr;
}

function renderHead() {
  const head = document.querySelector("#runs thead");
  const sortMark = (key) => view.sort.key === key ? (view.sort.ascending ? " ▲" : " ▼") : "";
  const th = (key, removable) => `<th><span data-sort="${esc(key)}" title="${esc(key)}">${esc(COLUMN_LABELS[key] ?? key)}${sortMark(key)}</span>` +
    (removable ? `<button class="remove" data-remove="${esc(key)}" title="remove this column">×</button>` : "") + "</th>";
  head.innerHTML = `<tr><th></th>${th("id", false)}${view.columns.map((key) => th(key, true)).join("")}<th></th></tr>`;
}

// The column and group menus offer every key some run has.
function renderMenus() {
  const keys = new Set(["kind", "objective", "status", "backend", "step", "tokens_seen", "elapsed_s", "load"]);
  for (const run of state.runs) for (const key of Object.keys(run.fields || {})) keys.add(key);
  const sorted = [...keys].sort();
  if (sorted.join("\n") === view.menuKeys) return;
  view.menuKeys = sorted.join("\n");
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
  const { key, ascending } = view.sort;
  const runs = state.runs.filter((run) => matches(run, filter))
    .sort((a, b) => (ascending ? 1 : -1) * compare(value(a, key), value(b, key)));
  const body = document.querySelector("#runs tbody");
  if (!view.groupBy) {
    body.replaceChildren(...runs.map(runRow));
    return;
  }
  const groups = new Map();
  for (const run of runs) {
    const group = String(value(run, view.groupBy) ?? "(none)");
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(run);
  }
  body.replaceChildren(...[...groups.keys()].sort().flatMap((group) => [groupRow(group, groups.get(group)), ...groups.get(group).map(runRow)]));
}

/** Lists the runs again and shows them. */
export async function refreshRuns() {
  try {
    state.runs = await api("/api/runs");
    renderRuns();
  } catch (e) {
    console.error(e);
  }
}

/** Charts run `id`, unless it is charted already, and ticks its box. */
export function selectRun(id) {
  if (state.selected.has(id)) return;
  follow(id, refreshRuns);
  renderRuns();
}

/** Works the table: sorting, columns, grouping and filtering, and each row's box and buttons. */
export function initRuns() {
  document.querySelector("#runs thead").addEventListener("click", (event) => {
    const { sort, remove } = event.target.dataset;
    if (sort) view.sort = { key: sort, ascending: view.sort.key === sort ? !view.sort.ascending : true };
    if (remove) view.columns = view.columns.filter((key) => key !== remove);
    if (sort || remove) renderRuns();
  });
  document.getElementById("add-column").addEventListener("change", (event) => {
    const key = event.target.value;
    if (key && !view.columns.includes(key)) view.columns.push(key);
    event.target.value = "";
    renderRuns();
  });
  document.getElementById("group-by").addEventListener("change", (event) => {
    view.groupBy = event.target.value;
    renderRuns();
  });
  document.getElementById("filter").addEventListener("input", renderRuns);
  document.querySelector("#runs tbody").addEventListener("click", async (event) => {
    const row = event.target.closest("tr");
    if (!row) return;
    const id = row.dataset.run;
    if (event.target.type === "checkbox") {
      event.target.checked ? follow(id, refreshRuns) : unfollow(id);
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
}
