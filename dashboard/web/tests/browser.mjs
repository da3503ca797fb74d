// The dashboard in a real headless Chromium, driven by Playwright: start a run from the form, see
// its chart gain points while it trains, stop it, resume it, overlay a second run, and read a
// run's samples. Screenshots go to the folder given; every failed expectation exits non-zero.
//
// usage: node browser.mjs DASHBOARD_URL CORPUS_PATH SCREENSHOT_DIR
// (run by tests/dashboard.rs, which starts the dashboard on a temporary runs directory holding
// one finished causal run, "done", of 400 steps evaluated every 100, and a fine-tune of it on a
// task file with a long path)
import { chromium } from "playwright-core";
import { strict as assert } from "node:assert";
import path from "node:path";

const [url, corpus, shots] = process.argv.slice(2);
assert.ok(url && corpus && shots, "usage: node browser.mjs DASHBOARD_URL CORPUS_PATH SCREENSHOT_DIR");
const TIMEOUT = 120_000;

const browser = await chromium.launch({
  executablePath: process.env.PRIMER_CHROMIUM || "/usr/bin/chromium",
  // As root in a container, and on a machine without internet: no sandbox, no background calls.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const failures = [];
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  page.on("console", (message) => { if (message.type() === "error") failures.push(`console error: ${message.text()}`); });
  page.on("response", (response) => { if (response.status() >= 400) failures.push(`${response.status()} for ${response.url()}`); });
  const shot = async (name) => {
    await page.screenshot({ path: path.join(shots, `${name}.png`) });
    console.log(`screenshot ${name}.png`);
  };
  const row = (id) => page.locator(`#runs tbody tr[data-run="${id}"]`);
  const status = (id) => row(id).getByTestId("status");
  const points = async () => Number(await page.getByTestId("points").getAttribute("data-count"));
  const morePointsThan = (n) => page.waitForFunction(
    (n) => Number(document.querySelector("[data-testid=points]").dataset.count) > n, n, { timeout: TIMEOUT });

  await page.goto(url);
  await status("done").filter({ hasText: "finished" }).waitFor();

  // Start a run from the form: the server runs the CLI's own validation, then the run appears,
  // selected, and its chart grows as it trains.
  const form = page.getByTestId("start-form");
  // The objectives come from primer's registry.
  await form.locator("[name=objective] option[value=clm]").waitFor({ state: "attached" });
  await form.locator("[name=objective]").selectOption("clm");
  await form.locator("[name=name]").fill("live");
  await form.locator("[name=corpus]").fill(corpus);
  for (const [name, value] of [["layers", "1"], ["d_model", "16"], ["heads", "2"], ["seq_len", "16"],
    ["batch_size", "4"], ["steps", "1000000"], ["eval_every", "25"]]) {
    await form.locator(`[name=${name}]`).fill(value);
  }
  await page.getByTestId("start").click();
  await page.getByTestId("form-error").filter({ hasText: "started live" }).waitFor();
  await status("live").filter({ hasText: "running" }).waitFor();
  await morePointsThan(0);
  const first = await points();
  await morePointsThan(first + 20);
  console.log(`chart points while training: ${first} then ${await points()}`);
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
  // Each named with its objective, as the registry labels it.
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

  // Leave nothing running.
  await row("live").getByTestId("stop").click();
  await status("live").filter({ hasText: "interrupted" }).waitFor();

  // Layout, with a long run name and a task given as a long file path: at 1500 and at 1024
  // pixels wide no panel overlaps another, the runs table stays inside its panel (it scrolls)
  // and the kind column shows the task's file name, not its path.
  for (const width of [1500, 1024]) {
    await page.setViewportSize({ width, height: 1000 });
    // Let the chart follow its panel's new width.
    await page.waitForFunction(() => {
      const chart = document.querySelector("[data-testid=chart]");
      const plot = chart.querySelector(".uplot");
      return plot && plot.getBoundingClientRect().right <= chart.getBoundingClientRect().right + 1;
    });
    const layout = await page.evaluate(() => {
      document.querySelector("[data-testid=runs-scroll]").scrollLeft = 0;
      const box = (element) => {
        const { left, right, top, bottom } = element.getBoundingClientRect();
        return { left, right, top, bottom };
      };
      const sections = [...document.querySelectorAll("main > section")];
      return {
        sections: sections.map(box),
        panel: box(sections[0]),
        table: box(document.querySelector("[data-testid=runs-scroll]")),
        metrics: box(sections[1]),
        chart: box(document.querySelector("[data-testid=chart] .uplot")),
        kinds: [...document.querySelectorAll("#runs tbody td:nth-child(3)")].map((td) => td.textContent),
      };
    });
    const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    layout.sections.forEach((a, i) => layout.sections.slice(i + 1).forEach((b) =>
      assert.ok(!overlap(a, b), `panels overlap at ${width}px: ${JSON.stringify([a, b])}`)));
    assert.ok(layout.table.left >= layout.panel.left && layout.table.right <= layout.panel.right,
      `the runs table leaves its panel at ${width}px: ${JSON.stringify(layout)}`);
    assert.ok(layout.chart.left >= layout.metrics.left && layout.chart.right <= layout.metrics.right,
      `the chart leaves its panel at ${width}px: ${JSON.stringify(layout)}`);
    assert.ok(layout.kinds.some((kind) => kind.includes("a-task-file-with-a-long-name.tsv")), `${layout.kinds}`);
    assert.ok(layout.kinds.every((kind) => !kind.includes("/")), `a task path in the kind column: ${layout.kinds}`);
    await shot(`5-layout-${width}`);
  }
} catch (error) {
  failures.push(error.stack || String(error));
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("browser test passed");
