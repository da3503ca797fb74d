// The job form: the chosen command's options, as primer's CLI declares them (/api/commands).
// The common ones are shown, the rest under "more options"; an empty field leaves the option at
// its default (the placeholder). A job the CLI accepts is queued; one it refuses shows its error.

import { api, post } from "./api.js";
import { refreshQueue } from "./queue.js";
import { refreshRuns, selectRun } from "./runs.js";

const SHOWN_OPTIONS = {
  pretrain: ["out", "objective", "corpus", "tokenizer-kind", "layers", "d-model", "heads", "seq-len", "batch-size", "steps", "eval-every", "backend"],
  finetune: ["from", "task", "out", "freeze-encoder", "from-scratch", "epochs", "train-limit", "backend"],
  compare: ["out", "corpus", "objectives", "task", "seeds", "steps", "label-budgets", "backend"],
};
// The commands and objectives the server offers.
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

// Submits the form's job; a pre-training run it starts at once is charted.
async function submit(event) {
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
    if (started && reply.id && command === "pretrain") selectRun(reply.id);
  } catch (e) {
    showJobError(e.message);
  }
}

// Reads the commands and objectives the server offers and shows the first command's form.
async function loadCommands() {
  [jobs.commands, jobs.objectives] = await Promise.all([api("/api/commands"), api("/api/objectives")]);
  const menu = document.getElementById("job-command");
  menu.replaceChildren(...jobs.commands.map((c) => new Option(c.name, c.name)));
  showCommand(menu.value);
}

/** Works the form, once the commands it offers are read. */
export function initForm() {
  document.getElementById("job-command").addEventListener("change", (event) => showCommand(event.target.value));
  document.getElementById("job-form").addEventListener("submit", submit);
  loadCommands().catch(console.error);
}
