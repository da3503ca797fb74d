// The metrics chart: the followed runs' records, streamed by server-sent events, drawn with uPlot
// (the vendored classic script, `window.uPlot`) as the metric, split, x axis, smoothing and
// scales chosen.

import { withToken } from "./api.js";
import { state } from "./state.js";

const { uPlot } = window;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

let plot = null;
let drawPending = false;

// A run's name in the chart legend, with its objective's label (`mlm:span`) when it has one.
function seriesLabel(id) {
  const run = state.runs.find((r) => r.id === id);
  return run && run.objective ? `${id} (${run.objective})` : id;
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

/** Charts run `id`, its records streamed as they are logged; `onStatus` is called when its
 * status changes. */
export function follow(id, onStatus) {
  const entry = { records: [], source: null };
  const source = new EventSource(withToken("/api/events?run=" + encodeURIComponent(id)));
  source.addEventListener("metrics", (event) => {
    entry.records.push(...JSON.parse(event.data).records.map(withObjectiveMetrics));
    scheduleDraw();
  });
  source.addEventListener("status", () => onStatus());
  entry.source = source;
  state.selected.set(id, entry);
}

/** Stops charting run `id`. */
export function unfollow(id) {
  const entry = state.selected.get(id);
  if (entry) entry.source.close();
  state.selected.delete(id);
  scheduleDraw();
}

// Draws at the next frame, once however many records arrive before it.
function scheduleDraw() {
  if (!drawPending) {
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; draw(); });
  }
}

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
  plot = new uPlot({
    width: chart.clientWidth || 640,
    height: 360,
    scales: { x: { time: false, distr: logx ? 3 : 1 }, y: { distr: logy ? 3 : 1 } },
    axes: [{ label: xKey }, { label: `${split} ${metric}` }],
    series: [{}, ...ids.map((id, i) => ({ label: seriesLabel(id), stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: true }))],
  }, data, chart);
}

/** Redraws the chart as its controls change, and resizes it with its panel. */
export function initChart() {
  // The chart follows its panel's width when the window (or the layout) changes.
  new ResizeObserver(() => {
    const chart = document.getElementById("chart");
    if (plot && chart.clientWidth > 0 && chart.clientWidth !== plot.width) {
      plot.setSize({ width: chart.clientWidth, height: plot.height });
    }
  }).observe(document.getElementById("chart"));
  for (const id of ["metric", "split", "xaxis", "smoothing", "logx", "logy"]) {
    document.getElementById(id).addEventListener("input", scheduleDraw);
  }
}
