// The queue: queued jobs in their order (move up, move down, cancel), running ones with their
// CPU and memory, ended ones newest first with their errors; each job's log on demand; the
// number of jobs that may run at once, and the machine's load.

import { api, post } from "./api.js";
import { esc } from "./format.js";

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

/** Reads the queue again and shows it, with the machine's load. */
export async function refreshQueue() {
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

/** Works the queue's buttons and its limit. */
export function initQueue() {
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
}
