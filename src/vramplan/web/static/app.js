// vramplan page: reads the form into a SCENARIO.md object, posts it to /api/estimate or /api/speed, renders the JSON.
"use strict";

const GIB = 2 ** 30;
const form = document.getElementById("scenario");
const errorBox = document.getElementById("error");
const results = document.getElementById("results");
const speedBox = document.getElementById("speed");

/** Create an element with attributes and children (strings become text nodes, never HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

const gib = (bytes) => (bytes / GIB).toFixed(2);

/** Fill a datalist from a catalog endpoint. */
async function fillList(url, listId, label) {
  const response = await fetch(url);
  const rows = await response.json();
  document.getElementById(listId).replaceChildren(...rows.map((r) => el("option", { value: r.name, label: label(r) })));
}

/** Show only the fieldset of the chosen task. */
function showTaskFields() {
  const task = form.elements.task.value;
  for (const set of form.querySelectorAll("fieldset[data-task]")) set.hidden = set.dataset.task !== task;
}

/** The scenario of the visible, non-blank fields; the server fills the defaults and validates. */
function readScenario() {
  const scenario = {};
  for (const input of form.querySelectorAll("input[name], select[name]")) {
    if (input.closest("fieldset").hidden || input.value.trim() === "") continue;
    const value = input.value.trim();
    if (input.dataset.number !== undefined) scenario[input.name] = Number(value);
    else if (input.name === "gpus") scenario.gpus = /^-?\d+$/.test(value) ? Number(value) : value.split(",").map((g) => g.trim());
    else if (input.name === "activation_checkpointing") scenario[input.name] = value === "selective" ? value : value === "true";
    else scenario[input.name] = value;
  }
  return scenario;
}

function clearErrors() {
  errorBox.hidden = true;
  errorBox.replaceChildren();
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
}

/** The 400/404 error object, inline: a summary naming each field, and a message under each form field named. */
function showError(error) {
  const all = error.errors || [error];
  errorBox.replaceChildren(...all.map((e) => el("p", {}, el("strong", {}, e.field), `: ${e.message}`,
    e.accepted ? el("span", { class: "accepted" }, ` (accepted: ${e.accepted.join(", ")})`) : "")));
  errorBox.hidden = false;
  for (const e of all) {
    const input = form.elements[e.field];
    if (!input || !input.id) continue;
    const note = el("p", { class: "field-error", id: `${e.field}-error` }, `${e.field}: ${e.message}`);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    input.after(note);
  }
}

let shownScenario = "";

/** POST the body; the JSON on success, null after showing the error. Panels of another scenario are hidden first. */
async function post(url, body) {
  clearErrors();
  const key = JSON.stringify(body);
  if (key !== shownScenario) {
    results.hidden = speedBox.hidden = true;
    shownScenario = key;
  }
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (response.ok) return data;
  showError(data.error || { field: "server", message: `HTTP ${response.status}` });
  return null;
}

/** One line echoing the normalized scenario, as the CLI titles its tables. */
function title(s) {
  const count = Array.isArray(s.gpus) ? s.gpus.length : s.gpus;
  const head = `${s.model} · ${s.task} · weights ${s.weights} · ${count}× ${s.gpu} · ${s.engine}`;
  if (s.task === "training") {
    return `${head} · ${s.method} · ${s.optimizer} · ${s.precision} · micro-batch ${s.batch_size} × GA ${s.gradient_accumulation} · seq ${s.seq_len}`;
  }
  return `${head} · batch ${s.batch_size} · ${s.prompt_tokens} + ${s.new_tokens} tokens`;
}

/** The busiest device's terms: name (formula and source in a details element), GiB, share, bar. */
function termTable(est, busiest) {
  const rows = est.breakdown.filter((t) => t.device === busiest.index).map((t) => {
    const share = busiest.device_bytes ? t.bytes / busiest.device_bytes : 0;
    const name = el("details", {}, el("summary", { title: `${t.formula} — ${t.source}` }, t.name),
      el("p", {}, el("span", { class: "label" }, "formula "), t.formula), el("p", {}, el("span", { class: "label" }, "source "), t.source));
    const bar = el("div", { class: "bar", role: "img", "aria-label": `${(share * 100).toFixed(1)}%` });
    bar.style.width = `${(share * 100).toFixed(2)}%`;
    return el("tr", { "data-term": t.name }, el("td", {}, name), el("td", { class: "num" }, gib(t.bytes)),
      el("td", { class: "num" }, `${(share * 100).toFixed(1)}%`), el("td", { class: "bar-cell" }, bar));
  });
  const footer = el("tr", { class: "total" }, el("td", {}, `device ${busiest.index} total (${busiest.gpu})`),
    el("td", { class: "num" }, gib(busiest.device_bytes)), el("td", { class: "num" }, "100%"),
    el("td", {}, `of ${gib(busiest.capacity_bytes)} GiB · range ${gib(est.range.low_bytes)}–${gib(est.range.high_bytes)} GiB`));
  return el("table", { id: "terms" }, el("caption", {}, "memory terms on the busiest device"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "term"), el("th", { scope: "col", class: "num" }, "GiB"),
      el("th", { scope: "col", class: "num" }, "share"), el("th", { scope: "col" }, "bar"))),
    el("tbody", {}, ...rows), el("tfoot", {}, footer));
}

/** One row per device when there are several. */
function deviceTable(devices) {
  const head = ["device", "gpu", "device GiB", "capacity GiB", "headroom GiB", "fits"];
  return el("table", { id: "devices" }, el("caption", {}, "per device"),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...devices.map((d) => el("tr", {}, el("td", { class: "num" }, String(d.index)), el("td", {}, d.gpu),
      el("td", { class: "num" }, gib(d.device_bytes)), el("td", { class: "num" }, gib(d.capacity_bytes)),
      el("td", { class: "num" }, gib(d.headroom_bytes)), el("td", { class: d.fits ? "yes" : "no" }, d.fits ? "yes" : "no")))));
}

function renderEstimate(est) {
  const busiest = est.devices.reduce((a, b) => (b.device_bytes > a.device_bytes ? b : a));
  const verdict = el("p", { id: "fits", class: est.fits ? "fits yes" : "fits no" },
    est.fits ? `fits: yes · headroom ${gib(busiest.headroom_bytes)} GiB` : `fits: no · short by ${gib(-busiest.headroom_bytes)} GiB`);
  const parts = [el("h2", {}, title(est.scenario)), verdict, termTable(est, busiest)];
  if (est.devices.length > 1) parts.push(deviceTable(est.devices));
  if (est.warnings.length) parts.push(el("ul", { class: "warnings" }, ...est.warnings.map((w) => el("li", {}, `warning: ${w}`))));
  results.replaceChildren(...parts);
  results.hidden = false;
}

/** Speed figures: decode and prefill for inference, step time for training. */
function renderSpeed(sp) {
  const rows = [];
  const add = (label, value) => rows.push(el("tr", {}, el("th", { scope: "row" }, label), el("td", { class: "num" }, value)));
  if (sp.training) {
    const t = sp.training;
    add("step time (s)", `${t.step_s.toFixed(2)} (${t.range_s.low.toFixed(2)}–${t.range_s.high.toFixed(2)})`);
    add("tokens/s", t.tokens_per_s.toFixed(0));
    add("MFU", `${(t.mfu * 100).toFixed(1)}%`);
  } else {
    const d = sp.decode;
    add("decode tokens/s (per user)", `${d.tokens_per_s.toFixed(1)} (${d.bound} bound)`);
    add("decode ms/token", `${d.ms_per_token.toFixed(2)} (${d.range_ms.low.toFixed(2)}–${d.range_ms.high.toFixed(2)})`);
    add("decode tokens/s (aggregate)", d.aggregate_tokens_per_s.toFixed(1));
    if (sp.prefill) add("TTFT (s)", sp.prefill.ttft_s.toFixed(3));
  }
  const notes = sp.warnings.length
    ? [el("ul", { class: "warnings" }, ...sp.warnings.map((w) => el("li", {}, `warning: ${w}`)))]
    : [];
  speedBox.replaceChildren(el("h2", {}, `speed · ${title(sp.scenario)}`),
    el("table", { id: "speed-table" }, el("tbody", {}, ...rows)), ...notes);
  speedBox.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const est = await post("api/estimate", readScenario());
  if (est) renderEstimate(est);
});
document.getElementById("speed-button").addEventListener("click", async () => {
  const sp = await post("api/speed", readScenario());
  if (sp) renderSpeed(sp);
});
form.elements.task.addEventListener("change", showTaskFields);
showTaskFields();
fillList("api/models", "models", (r) => `${r.hf_id} · ${(r.params / 1e9).toFixed(1)}B`);
fillList("api/gpus", "gpu-names", (r) => `${gib(r.capacity_bytes)} GiB`);
