// primer dashboard: the runs table, live charts (uPlot, fed by server-sent events), the job form,
// the queue and run detail, each a module; this one wires them and keeps them fresh.

import { initChart } from "./chart.js";
import { initDetail, refreshDetail } from "./detail.js";
import { initForm } from "./form.js";
import { initQueue, refreshQueue } from "./queue.js";
import { initRuns, refreshRuns } from "./runs.js";

initRuns();
initChart();
initDetail();
initQueue();
initForm();
refreshRuns();
refreshQueue();
setInterval(refreshDetail, 3000);
setInterval(refreshRuns, 3000);
setInterval(refreshQueue, 2000);
