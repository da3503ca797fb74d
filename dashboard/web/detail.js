// A run's detail (status, checkpoints, a comparison's progress and report, samples, summary,
// config, log) and the charted runs' configs side by side.

import { api, withToken } from "./api.js";
import { esc } from "./format.js";
import { state } from "./state.js";

let detailShown = null;

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

// A comparison's jobs, each done, running or pending, and its ETA.
function progressTable(progress) {
  const eta = progress.eta_s === null || progress.eta_s === undefined ? "ETA after the first job"
    : progress.eta_s === 0 ? "all done" : `about ${Math.round(progress.eta_s)} s left`;
  const rows = progress.jobs.map((job) => `<tr><td>${esc(job.what)}</td><td class="${esc(job.state)}">${esc(job.state)}</td></tr>`);
  return `<h4 data-testid="progress-summary">${progress.done} of ${progress.total} jobs done; ${eta}</h4>` +
    `<div class="scroll"><table data-testid="progress"><tr><th>job</th><th>state</th></tr>${rows.join("")}</table></div>`;
}

/** Shows run `id`'s detail in the detail panel. */
export async function showDetail(id) {
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

/** Shows the detail again if it is of a running comparison: it follows its progress. */
export function refreshDetail() {
  const run = state.runs.find((r) => r.id === detailShown);
  if (run && run.kind === "report" && run.status === "running") showDetail(detailShown).catch(console.error);
}

/** Shows the config diff on its button. */
export function initDetail() {
  document.getElementById("diff").addEventListener("click", () => showDiff().catch((e) => {
    document.getElementById("config-diff").textContent = e.message;
  }));
}
