// The dashboard in a real headless Chromium, driven by Playwright. It starts (and restarts) the
// dashboard itself, then, from the page: shows a refused option's error beside its field; starts
// a run from the form, sees its chart grow, stops, resumes and overlays it; queues two
// pre-training runs and a fine-tune with one job at a time, cancels one, restarts the dashboard
// mid-queue and sees the queue continue in its order; runs a small compare and opens its report;
// adds a config column, sorts, filters and groups by it, diffs two configs; and checks that no
// element overlaps another at 1500 and 1024 pixels wide. Screenshots go to the folder given; every
// failed expectation exits non-zero.
//
// usage: node browser.mjs PRIMER_BIN RUNS_DIR CORPUS TASK_FILE SCREENSHOT_DIR [DASHBOARD_ARGS...]
// (run by tests/dashboard.rs, whose runs directory holds one finished causal run, "done", of 400
// steps evaluated every 100, and a fine-tune of it on a task file with a long path; TASK_FILE has
// `text` and `label` columns)
import { chromium } from "playwright-core";
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import readline from "node:readline";
import path from "node:path";

const [primer, runs, corpus, task, shots, ...dashboardArgs] = process.argv.slice(2);
assert.ok(primer && runs && corpus && task && shots, "usage: node browser.mjs PRIMER_BIN RUNS_DIR CORPUS TASK_FILE SCREENSHOT_DIR [ARGS...]");
const TIMEOUT = 180_000;

// Starts `primer dashboard` on a free port; resolves with the process and its URL.
function startDashboard() {
  const child = spawn(primer, ["dashboard", "--runs", runs, "--port", "0", ...dashboardArgs], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once("line", (line) => {
      resolve({ child, url: line.split(" at ")[1].split(/\s/)[0] });
    });
    child.once("exit", (code) => reject(new Error(`the dashboard exited with ${code}`)));
  });
}

let dashboard = await startDashboard();
const browser = await chromium.launch({
  executablePath: process.env.PRIMER_CHROMIUM || "/usr/bin/chromium",
  // As root in a container, and on a machine without internet: no sandbox, no background calls.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const failures = [];
// Refusals the test provokes on purpose, by URL part.
const expectedRefusals = new Set();
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  // A refused request is checked by its response, below; any other console error fails.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      failures.push(`console error: ${message.text()}`);
    }
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && ![...expectedRefusals].some((part) => response.url().includes(part))) {
      failures.push(`${response.status()} for ${response.url()}`);
    }
  });
  const shot = async (name) => {
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    console.log(`screenshot ${name}.png`);
  };
  const row = (id) => page.locator(`#runs tbody tr[data-run="${id}"]`);
  const status = (id) => row(id).getByTestId("status");
  const points = async () => Number(await page.getByTestId("points").getAttribute("data-count"));
  const morePointsThan = (n) => page.waitForFunction(
    (n) => Number(document.querySelector("[data-testid=points]").dataset.count) > n, n, { timeout: TIMEOUT });
  const jobRow = (run) => page.locator("#queue tbody tr", { has: page.locator("td:nth-child(3)", { hasText: new RegExp(`^${run}$`) }) });
  const jobState = (run) => jobRow(run).getByTestId("job-state");
  const message = page.getByTestId("job-message");

  // Fills the job form of `command` afresh with `values` (by option key) and submits it.
  const submitJob = async (command, values) => {
    const menu = page.getByTestId("job-command");
    await menu.locator(`option[value="${command}"]`).waitFor({ state: "attached" });
    await menu.selectOption(command === "eval" ? "score" : "eval");
    await menu.selectOption(command);
    await page.locator("#more-options").evaluate((details) => { details.open = true; });
    const form = page.getByTestId("job-form");
    for (const [name, value] of Object.entries(values)) {
      const field = form.locator(`[name="${name}"]`);
      const kind = await field.evaluate((e) => e.tagName === "SELECT" ? "select" : e.type);
      if (kind === "select") await field.selectOption(String(value));
      else if (kind === "checkbox") await field.setChecked(Boolean(value));
      else await field.fill(String(value));
    }
    await page.getByTestId("submit-job").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=job-message]").textContent !== "checking…");
  };
  // The form's answer to the last job, which must name `text`.
  const answered = async (text) => {
    const said = await message.textContent();
    assert.ok(said.includes(text), `the form answered ${JSON.stringify(said)}, not ${text}`);
  };
  const tiny = { "objective": "clm", "corpus": corpus, "tokenizer-kind": "char", "layers": "1", "d-model": "16",
    "heads": "2", "seq-len": "16", "batch-size": "4" };

  await page.goto(dashboard.url);
  await status("done").filter({ hasText: "finished" }).waitFor();
  await page.getByTestId("machine").filter({ hasText: "CPUs" }).waitFor();

  // The CLI's refusal of an option shows beside its field.
  expectedRefusals.add("/api/jobs");
  await submitJob("pretrain", { ...tiny, out: "refused", heads: "3" });
  await page.getByTestId("error-heads").filter({ hasText: "does not divide" }).waitFor();
  assert.ok((await message.textContent()).includes("--heads"), await message.textContent());
  expectedRefusals.delete("/api/jobs");

  // Start a run from the form (the objectives come from primer's registry): it appears,
  // selected, and its chart grows as it trains.
  await submitJob("pretrain", { ...tiny, out: "live", steps: "1000000", "eval-every": "25" });
  await answered("started job");
  await answered(": live");
  await status("live").filter({ hasText: "running" }).waitFor();
  await morePointsThan(0);
  const first = await points();
  await morePointsThan(first + 20);
  console.log(`chart points while training: ${first} then ${await points()}`);
  // Its process's CPU, memory and speed beside it.
  await row("live").getByTestId("load").filter({ hasText: "MiB" }).waitFor();
  await shot("1-training");

  // Stop: the run checkpoints and exits; its row says interrupted and offers resume.
  await row("live").getByTestId("stop").click();
  await status("live").filter({ hasText: "interrupted" }).waitFor();
  const stopped = await points();
  await shot("2-stopped");

  // Resume: the run continues and the chart gains points again.
  await row("live").getByTestId("resume").click();
  await status("live").filter({ hasText: "running" }).waitFor();
  await morePointsThan(stopped + 20);
  console.log(`chart points after resume: ${stopped} then ${await points()}`);

  // Overlay the finished run: two series in one chart, each named in the legend.
  await row("done").getByTestId("select").check();
  await page.getByTestId("points").filter({ hasText: "from 2 run(s)" }).waitFor();
  const legend = await page.locator(".u-legend .u-series .u-label").allTextContents();
  assert.ok(legend.includes("live (clm)") && legend.includes("done (clm)"), `legend shows both runs: ${legend}`);
  await page.getByTestId("smoothing").fill("0.8");
  await shot("3-overlay");

  // Any numeric field of the records can be charted: the menu offers what the records hold.
  await page.getByTestId("metric").selectOption("elapsed_s");
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=points]").dataset.count) > 0);
  await page.getByTestId("metric").selectOption("loss");

  // The two runs' configs side by side: what differs (their step budgets), and nothing alike.
  await page.getByTestId("diff").click();
  const diff = page.getByTestId("config-diff");
  await diff.locator("td", { hasText: "train.steps" }).waitFor();
  const keys = await diff.locator("tr td:first-child").allTextContents();
  assert.ok(!keys.includes("model.n_layers"), `equal keys are left out: ${keys}`);

  // A causal run's detail holds the text it generated at each evaluation.
  await row("done").locator("[data-action=detail]").click();
  const samples = page.getByTestId("samples");
  await samples.filter({ hasText: "step 400:" }).waitFor();
  assert.ok((await samples.textContent()).includes("step 100:"), "a sample per evaluation");
  await shot("4-detail");
  await row("live").getByTestId("stop").click();
  await status("live").filter({ hasText: "interrupted" }).waitFor();

  // The queue, one job at a time: a long run, then a short one, a fine-tune of "done" on a task
  // file, and one to cancel, each queued behind the last.
  await submitJob("pretrain", { ...tiny, out: "q-long", steps: "1000000", "eval-every": "100" });
  await jobState("q-long").filter({ hasText: "running" }).waitFor();
  await submitJob("pretrain", { ...tiny, out: "q-short", steps: "60", "eval-every": "30" });
  await answered("q-short (place 1)");
  await submitJob("finetune", { from: path.join(runs, "done"), task, out: "q-finetune", epochs: "1" });
  await answered("q-finetune (place 2)");
  await submitJob("pretrain", { ...tiny, out: "q-cancelled", steps: "60" });
  await answered("q-cancelled (place 3)");
  await jobRow("q-cancelled").getByTestId("place").filter({ hasText: "3" }).waitFor();
  await jobRow("q-cancelled").getByTestId("cancel").click();
  await jobState("q-cancelled").filter({ hasText: "cancelled" }).waitFor();
  assert.equal(await jobRow("q-finetune").getByTestId("place").textContent(), "2");
  assert.equal(await jobState("q-short").textContent(), "queued");
  await shot("5-queue");

  // Restart the dashboard mid-queue: the running job runs on, and the new dashboard continues the
  // queue once it ends.
  await page.goto("about:blank");
  dashboard.child.kill("SIGKILL");
  dashboard = await startDashboard();
  await page.goto(dashboard.url);
  await jobState("q-long").filter({ hasText: "running" }).waitFor();
  assert.equal(await jobState("q-short").textContent(), "queued");
  await status("q-long").filter({ hasText: "running" }).waitFor();
  await row("q-long").getByTestId("stop").click();
  await jobState("q-short").filter({ hasText: /running|done/ }).waitFor();
  await jobState("q-finetune").filter({ hasText: "done" }).waitFor();
  const queue = await page.evaluate(async () => (await fetch("/api/queue")).json());
  const byRun = Object.fromEntries(queue.jobs.map((job) => [job.run, job]));
  assert.equal(byRun["q-long"].state, "stopped");
  assert.equal(byRun["q-short"].state, "done");
  assert.ok(byRun["q-long"].ended_at <= byRun["q-short"].started_at, "one job at a time");
  assert.ok(byRun["q-short"].ended_at <= byRun["q-finetune"].started_at, "in their order");
  assert.equal(byRun["q-cancelled"].started_at, null, "a cancelled job never starts");
  await shot("6-restarted");

  // A small compare from the browser: its own job list, then its report.
  const { objective: _, ...shared } = tiny;
  await submitJob("compare", { ...shared, out: "cmp-small", objectives: "clm", task, seeds: "1", steps: "20",
    "label-budgets": "all", "finetune-epochs": "1", "minimal-pairs": "none" });
  await answered("started job");
  await answered("cmp-small");
  await status("cmp-small").filter({ hasText: "finished" }).waitFor();
  await row("cmp-small").locator("[data-action=detail]").click();
  await page.getByTestId("progress-summary").filter({ hasText: "5 of 5 jobs done" }).waitFor();
  const report = page.frameLocator("[data-testid=report]");
  await report.locator("h1").first().waitFor();
  await shot("7-compare");

  // The runs table as a research tool: a config column, sorted; a range filter; groups.
  await page.getByTestId("add-column").locator('option[value="config.train.steps"]').waitFor({ state: "attached" });
  await page.getByTestId("add-column").selectOption("config.train.steps");
  const header = page.locator('#runs thead [data-sort="config.train.steps"]');
  await header.click();
  const column = await page.evaluate(() => {
    const index = [...document.querySelectorAll("#runs thead th")].findIndex((th) => th.querySelector('[data-sort="config.train.steps"]'));
    return [...document.querySelectorAll("#runs tbody tr")].map((tr) => tr.children[index].textContent);
  });
  const numbers = column.filter((text) => text !== "").map(Number);
  assert.ok(numbers.length >= 4, `steps of the pre-training runs: ${column}`);
  assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `sorted by the new column: ${column}`);
  await page.getByTestId("filter").fill("config.train.steps>1000");
  const long = await page.locator("#runs tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.run));
  assert.deepEqual(long.sort(), ["live", "q-long"], `the range filter keeps the long runs: ${long}`);
  await page.getByTestId("filter").fill("kind=pretrain");
  await page.getByTestId("group-by").selectOption("objective");
  const groups = await page.getByTestId("group-name").allTextContents();
  assert.ok(groups.some((g) => /objective = clm \(\d+ runs\)/.test(g)), `groups: ${groups}`);
  assert.ok(await page.getByTestId("group-stat").count() > 0, "each group's mean ± sd");
  await shot("8-table");
  await page.getByTestId("group-by").selectOption("");
  await page.getByTestId("filter").fill("");

  // Layout, with long run names and task paths: at 1500 and at 1024 pixels wide no panel, table,
  // chart or form field overlaps another or leaves its panel, and the kind column shows a task's
  // file name, not its path.
  await row("done").getByTestId("select").check();
  await page.getByTestId("points").filter({ hasText: "from 1 run(s)" }).waitFor();
  for (const width of [1500, 1024]) {
    await page.setViewportSize({ width, height: 1000 });
    await page.waitForFunction(() => {
      const chart = document.querySelector("[data-testid=chart]");
      const plot = chart.querySelector(".uplot");
      return plot && plot.getBoundingClientRect().right <= chart.getBoundingClientRect().right + 1;
    });
    const layout = await page.evaluate(() => {
      document.querySelectorAll(".scroll").forEach((s) => { s.scrollLeft = 0; });
      const box = (element) => {
        const { left, right, top, bottom } = element.getBoundingClientRect();
        return { left, right, top, bottom };
      };
      const byId = (id) => box(document.getElementById(id));
      return {
        sections: [...document.querySelectorAll("main > section")].map(box),
        header: [...document.querySelectorAll("header > *")].map(box),
        fields: [...document.querySelectorAll("#job-fields .field, #more-job-fields .field")].map(box),
        inside: [
          ["runs table", box(document.querySelector("[data-testid=runs-scroll]")), byId("runs-panel")],
          ["queue", box(document.querySelector("[data-testid=queue-scroll]")), byId("jobs-panel")],
          ["job form", byId("job-form"), byId("jobs-panel")],
          ["chart", box(document.querySelector("[data-testid=chart] .uplot")), byId("metrics-panel")],
          ["filter", byId("filter"), byId("runs-panel")],
        ],
        kinds: [...document.querySelectorAll("#runs tbody td:nth-child(3)")].map((td) => td.textContent),
      };
    });
    const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    for (const [name, boxes] of [["panels", layout.sections], ["header", layout.header], ["form fields", layout.fields]]) {
      boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) =>
        assert.ok(!overlap(a, b), `${name} overlap at ${width}px: ${JSON.stringify([a, b])}`)));
    }
    for (const [name, inner, outer] of layout.inside) {
      assert.ok(inner.left >= outer.left && inner.right <= outer.right + 0.5 && inner.top >= outer.top && inner.bottom <= outer.bottom + 0.5,
        `the ${name} leaves its panel at ${width}px: ${JSON.stringify({ inner, outer })}`);
    }
    assert.ok(layout.kinds.some((kind) => kind.includes("a-task-file-with-a-long-name.tsv")), `${layout.kinds}`);
    assert.ok(layout.kinds.every((kind) => !kind.includes("/")), `a task path in the kind column: ${layout.kinds}`);
    await shot(`9-layout-${width}`);
  }
} catch (error) {
  failures.push(error.stack || String(error));
} finally {
  await browser.close();
  dashboard.child.kill("SIGKILL");
}
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("browser test passed");
