// What the page's panels share: the runs as the server last listed them, and the runs the chart
// follows. Each panel's own settings stay in its module.

export const state = {
  runs: [],
  selected: new Map(), // run id -> { records: [], source: EventSource }
};
