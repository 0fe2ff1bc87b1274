// dtask ui: plain DOM, no framework. Every value from the server goes into the page through textContent or
// setAttribute, never innerHTML, so task names and outputs are shown as the characters they are.
"use strict";

const meta = name => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? "";
const actionsOn = meta("dtask-actions") === "on";
const csrf = meta("dtask-csrf");
const main = document.getElementById("main");
const SVG = "http://www.w3.org/2000/svg";
const STATES = ["succeeded", "failed", "timedOut", "lost", "abandoned", "running", "skipped", "missed"];
const HOLLOW = new Set(["skipped", "missed", "abandoned"]);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// replaceChildren without the nulls of optional parts.
const fill = (parent, ...children) => parent.replaceChildren(...children.flat(Infinity).filter(c => c !== null && c !== undefined && c !== false));

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") node.textContent = v; else node.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) if (c) node.append(c);
  return node;
}

const pad = n => String(n).padStart(2, "0");
function localTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function shortTime(iso) {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function age(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? (s % 60) + "s" : ""}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor(s % 3600 / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor(s % 86400 / 3600)}h`;
}
function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)}s`;
  return age(ms);
}
const relative = iso => {
  if (!iso) return "";
  const d = new Date(iso) - Date.now();
  return d >= 0 ? `in ${age(d)}` : `${age(d)} ago`;
};
const badge = (state, text) => el("span", { class: `badge ${state}`, text: text ?? state });
const taskHref = (ns, name) => `#/task/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok && body.error) throw new Error(body.error);
  return body;
}

function showError(error) {
  const banner = document.getElementById("banner");
  banner.hidden = !error;
  banner.textContent = error ? `Consul: ${error}` : "";
}

// ---- tasks ----------------------------------------------------------------------------------------------------
const taskState = { ns: "", q: "", offset: 0, limit: 50 };

function mountTasks() {
  const nsSelect = el("select", { id: "ns", "aria-label": "namespace", onchange: e => { taskState.ns = e.target.value; taskState.offset = 0; refresh(); } },
    el("option", { value: "", text: "All namespaces" }));
  let typing;
  const search = el("input", { id: "q", type: "search", placeholder: "Filter by name", value: taskState.q,
    oninput: e => { clearTimeout(typing); typing = setTimeout(() => { taskState.q = e.target.value; taskState.offset = 0; refresh(); }, 200); } });
  const count = el("span", { class: "count", id: "count" });
  const body = el("div", { id: "tasks-body", class: "panel" });
  const pager = el("div", { class: "pager", id: "pager" });
  main.replaceChildren(el("h1", { text: "Tasks" }), el("div", { class: "toolbar" }, nsSelect, search, count), body, pager);
  return async () => {
    const p = new URLSearchParams({ ns: taskState.ns, q: taskState.q, offset: taskState.offset, limit: taskState.limit });
    const page = await getJson(`/api/tasks?${p}`);
    showError(page.error);
    const known = [...nsSelect.options].map(o => o.value);
    if (page.namespaces.join() !== known.slice(1).join()) {
      nsSelect.replaceChildren(el("option", { value: "", text: "All namespaces" }), ...page.namespaces.map(n => el("option", { value: n, text: n })));
      nsSelect.value = taskState.ns;
    }
    count.textContent = page.loading ? "loading…" : `${page.total} task${page.total === 1 ? "" : "s"}`;
    body.replaceChildren(tasksTable(page.items));
    const last = Math.min(page.offset + page.limit, page.total);
    pager.replaceChildren(
      el("span", { text: page.total ? `${page.offset + 1}–${last} of ${page.total}` : "" }),
      el("button", { text: "‹ Prev", disabled: page.offset === 0, onclick: () => { taskState.offset = Math.max(0, page.offset - page.limit); refresh(); } }),
      el("button", { text: "Next ›", disabled: last >= page.total, onclick: () => { taskState.offset = page.offset + page.limit; refresh(); } }));
  };
}

function tasksTable(items) {
  if (!items.length) return el("div", { class: "empty", text: "No tasks." });
  return el("table", { id: "tasks" },
    el("thead", {}, el("tr", {}, ["Task", "Schedule", "Next fire", "Last run", "Owner", "State"].map(h => el("th", { text: h })))),
    el("tbody", {}, items.map(t => {
      const run = t.lastRun;
      const state = [];
      if (t.suspended) state.push(badge("suspended", "suspended"));
      if (t.running) state.push(badge("running", t.lockNode ? `running on ${t.lockNode}` : "running"));
      if (!t.suspended && !t.running && !t.problems.length) state.push(el("span", { class: "sub", text: "ok" }));
      for (const p of t.problems) state.push(el("span", { class: "problem", text: p }));
      return el("tr", { "data-task": `${t.namespace}/${t.name}` },
        el("td", {}, el("a", { href: taskHref(t.namespace, t.name), text: t.name }), el("span", { class: "sub", text: t.namespace })),
        el("td", {}, el("span", { text: t.scheduleWords ?? t.schedule }), el("span", { class: "sub mono", text: `${t.schedule} · ${t.timeZone}` })),
        el("td", {}, t.nextFire ? [el("span", { text: `${localTime(t.nextFire)} (${relative(t.nextFire)})` }), el("span", { class: "sub", text: t.nextFireZone })] : el("span", { class: "sub", text: t.suspended ? "suspended" : "—" })),
        el("td", { class: "last-run" }, run ? [badge(run.state), " ", el("span", { text: run.node }),
          el("span", { class: "sub", text: [run.manual ? "manual" : relative(run.slot), duration(run.durationMs), run.reason].filter(Boolean).join(" · ") })] : el("span", { class: "sub", text: "never ran" })),
        el("td", {}, el("span", { class: "sub", text: t.owner })),
        el("td", { class: "state" }, state));
    })));
}

// ---- timeline -------------------------------------------------------------------------------------------------
let timelineRange = "hour";

function mountTimeline() {
  const seg = el("div", { class: "seg" }, ["5m", "15m", "hour", "day", "week"].map(r =>
    el("button", { class: r === timelineRange ? "active" : "", "data-range": r, text: r.endsWith("m") ? `Last ${r.slice(0, -1)} min` : `Last ${r}`,
      onclick: () => { timelineRange = r; render(); } })));
  const chart = el("div", { class: "panel timeline", id: "timeline" });
  const notRun = el("div", { id: "not-run" });
  main.replaceChildren(el("h1", { text: "Timeline" }), el("div", { class: "toolbar" }, seg, el("span", { class: "count", id: "count" })), chart,
    el("h2", { text: "Slots that did not run" }), notRun);
  return async () => {
    const data = await getJson(`/api/timeline?range=${timelineRange}`);
    showError(data.error);
    document.getElementById("count").textContent = `${data.runs.length}${data.truncated ? "+" : ""} marks · ${data.nodes.length} nodes`;
    chart.replaceChildren(timelineSvg(data, chart.clientWidth - 24), legend());
    const skipped = data.runs.filter(r => HOLLOW.has(r.state));
    notRun.replaceChildren(skipped.length ? el("div", { class: "panel" }, el("table", { id: "not-run-table" },
      el("thead", {}, el("tr", {}, ["Slot", "Task", "State", "Recorded by", "Reason"].map(h => el("th", { text: h })))),
      el("tbody", {}, skipped.slice(0, 50).map(r => el("tr", { "data-task": r.task, "data-state": r.state },
        el("td", { text: r.slot ? localTime(r.slot) : "manual" }), el("td", {}, el("a", { href: taskHref(...r.task.split("/")), text: r.task })),
        el("td", {}, badge(r.state)), el("td", { text: r.node }), el("td", { class: "reason", text: r.reason ?? "" })))))) :
      el("div", { class: "empty", text: "None in this range." }));
  };
}

function timelineSvg(data, width) {
  const from = new Date(data.from).getTime(), to = new Date(data.to).getTime();
  const left = 150, right = 16, top = 26, rowH = 30;
  const w = Math.max(width, 500), plot = w - left - right;
  const nodes = data.nodes.length ? data.nodes : ["(no executors)"];
  const h = top + rowH * nodes.length + 8;
  const x = t => left + (t - from) / (to - from) * plot;
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "img", "aria-label": "runs by node over time" });
  const axis = svg("g", { class: "axis" });
  const step = { "5m": 30e3, "15m": 60e3, hour: 10 * 60e3, day: 3 * 3600e3, week: 86400e3 }[timelineRange];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    axis.append(svg("line", { class: "grid", x1: x(t), x2: x(t), y1: top - 4, y2: h - 8 }));
    const d = new Date(t);
    const label = timelineRange === "week" ? `${d.getMonth() + 1}/${d.getDate()}`
      : timelineRange === "5m" ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    axis.append(svg("text", { x: x(t), y: 14, "text-anchor": "middle", text: label }));
  }
  root.append(axis);
  nodes.forEach((n, i) => {
    const y = top + i * rowH;
    if (i % 2 === 0) root.append(svg("rect", { class: "row-bg", x: left, y, width: plot, height: rowH }));
    root.append(svg("text", { x: left - 10, y: y + rowH / 2 + 4, "text-anchor": "end", text: n.length > 20 ? n.slice(0, 19) + "…" : n }, svg("title", { text: n })));
  });
  root.append(svg("line", { class: "now", x1: x(to), x2: x(to), y1: top - 4, y2: h - 8 }));
  const marks = svg("g", {});
  for (const r of data.runs) {
    const row = nodes.indexOf(r.node);
    if (row < 0) continue;
    const y = top + row * rowH;
    const at = new Date(r.slot ?? r.startedAt).getTime();
    const tip = [`${r.task}`, r.slot ? `slot ${localTime(r.slot)}` : "manual run", `${r.state} on ${r.node}`];
    if (r.reason) tip.push(`reason: ${r.reason}`);
    if (r.delayMs !== null && r.delayMs !== undefined) tip.push(`fire delay: ${duration(r.delayMs)}`);
    if (r.startedAt && r.finishedAt && !HOLLOW.has(r.state)) tip.push(`duration: ${duration(new Date(r.finishedAt) - new Date(r.startedAt))}`);
    if (r.exitCode !== null && r.exitCode !== undefined) tip.push(`exit code ${r.exitCode}`);
    const attrs = { class: `mark ${r.state}`, "data-task": r.task, "data-state": r.state, "data-slot": r.slot ? Date.parse(r.slot) / 1000 : "", "data-node": r.node };
    let shape;
    if (HOLLOW.has(r.state)) {
      const cx = x(at), cy = y + rowH / 2;
      shape = svg("path", { ...attrs, d: `M${cx} ${cy - 7}L${cx + 7} ${cy}L${cx} ${cy + 7}L${cx - 7} ${cy}Z` });
    } else {
      const start = r.startedAt ? new Date(r.startedAt).getTime() : at;
      const end = r.finishedAt ? new Date(r.finishedAt).getTime() : (r.state === "running" ? to : start);
      const x0 = x(Math.max(start, from));
      shape = svg("rect", { ...attrs, x: x0, y: y + 7, width: Math.max(4, x(end) - x0), height: rowH - 14, rx: 2 });
    }
    shape.append(svg("title", { text: tip.join("\n") }));
    marks.append(shape);
  }
  root.append(marks);
  return root;
}

function legend() {
  return el("div", { class: "legend" }, STATES.map(s => {
    const span = el("span", { class: HOLLOW.has(s) ? "hollow" : "", text: s });
    span.style.setProperty("--c", `var(--${s})`);
    return span;
  }));
}

// ---- task -----------------------------------------------------------------------------------------------------
function mountTask(ns, name) {
  const result = el("div", { id: "action-result" });
  const body = el("div", { id: "task-body" });
  main.replaceChildren(el("h1", {}, el("a", { href: "#/tasks", text: "Tasks" }), " / ", el("span", { id: "task-title", text: `${ns}/${name}` })), result, body);
  return async () => {
    let t;
    try { t = await getJson(`/api/task?ns=${encodeURIComponent(ns)}&name=${encodeURIComponent(name)}`); }
    catch (e) { body.replaceChildren(el("div", { class: "panel empty", text: e.message })); return; }
    const head = el("div", { class: "actions" },
      t.suspended ? badge("suspended", "suspended") : null,
      el("span", { class: "sub", text: `owner ${t.owner} · generation ${t.generation} · ${t.signed ? "signed" : "unsigned"}` }));
    if (actionsOn) {
      head.prepend(
        el("button", { class: "primary", id: "action-trigger", text: "Trigger now", onclick: () => act("trigger", ns, name) }),
        t.suspended ? el("button", { id: "action-resume", text: "Resume", onclick: () => act("resume", ns, name) })
          : el("button", { id: "action-suspend", text: "Suspend", onclick: () => act("suspend", ns, name) }));
    }
    const fields = list => el("dl", { class: "fields" }, list.map(f => [el("dt", { text: f.label }), el("dd", { text: f.value })]));
    // Live updates re-render the view: the outputs someone opened stay open.
    const open = new Set([...body.querySelectorAll("details[open]")].map(d => d.dataset.run));
    fill(body, head,
      t.problems.length ? el("div", { class: "result err" }, t.problems.map(p => el("div", { class: "problem", text: p }))) : null,
      el("div", { class: "grid2" },
        el("div", {}, el("h2", { text: "Spec" }), el("div", { class: "panel", id: "spec" }, fields([
          ...t.spec, ...(t.scheduleWords ? [{ label: "In words", value: t.scheduleWords }] : [])]))),
        el("div", {}, el("h2", { text: "Status" }), el("div", { class: "panel", id: "status" }, fields([{ label: "Lock", value: t.lock }, ...t.status])),
          t.pending.length ? [el("h2", { text: "Pending requests" }), el("div", { class: "panel" }, fields(t.pending))] : null)),
      el("h2", { text: "History" }),
      el("div", { class: "panel" }, t.history.length ? el("table", { id: "history" },
        el("thead", {}, el("tr", {}, ["Slot", "State", "Node", "Attempt", "Started", "Duration", "Exit", "Reason / output"].map(h => el("th", { text: h })))),
        el("tbody", {}, t.history.map(r => el("tr", { "data-state": r.state },
          el("td", { text: r.manual ? `manual #${r.triggerIndex}` : localTime(r.slot) }), el("td", {}, badge(r.state)), el("td", { text: r.node }),
          el("td", { text: r.attempt }), el("td", { text: r.startedAt ? localTime(r.startedAt) : "—" }), el("td", { text: duration(r.durationMs) }),
          el("td", { text: r.exitCode ?? "" }),
          el("td", {}, r.reason ? el("span", { class: "reason", text: r.reason }) : null,
            r.output ? el("details", { "data-run": runKey(r), open: open.has(runKey(r)) }, el("summary", { text: "output" }), el("pre", { class: "tail", text: r.output })) : null)))))
        : el("div", { class: "empty", text: "No runs recorded." })),
      el("h2", { text: `Next ${t.nextSlots.length} slots (${t.timeZone})` }),
      el("div", { class: "panel" }, t.nextSlots.length ? el("table", { id: "next-slots" },
        el("thead", {}, el("tr", {}, ["UTC", "Task time zone", "Your time", "Slot", "Fires"].map(h => el("th", { text: h })))),
        el("tbody", {}, t.nextSlots.map(s => el("tr", {}, el("td", { class: "mono", text: s.utc }), el("td", { class: "mono", text: s.local }),
          el("td", { class: "mono", text: localTime(s.utc) }), el("td", { class: "mono", text: s.slot }), el("td", { class: "mono", text: s.fires ?? "" })))))
        : el("div", { class: "empty", text: "No upcoming slots." })));
  };
}

const runKey = r => r.manual ? `manual-${r.triggerIndex}` : `slot-${r.slot}`;

async function act(action, ns, name) {
  const result = document.getElementById("action-result");
  document.querySelectorAll(".actions button").forEach(b => { b.disabled = true; });
  try {
    const response = await fetch(`/api/actions/${action}?ns=${encodeURIComponent(ns)}&name=${encodeURIComponent(name)}`,
      { method: "POST", headers: { "X-Dtask-Csrf": csrf } });
    const body = await response.json().catch(() => ({ message: `${response.status} ${response.statusText}` }));
    result.replaceChildren(el("div", { class: `result ${response.ok ? "ok" : "err"}`, id: "action-message", text: body.message ?? body.error }));
  } finally {
    refresh();
  }
}

// ---- nodes ----------------------------------------------------------------------------------------------------
function mountNodes() {
  const body = el("div", { class: "panel", id: "nodes-body" });
  main.replaceChildren(el("h1", { text: "Nodes" }), body);
  return async () => {
    const data = await getJson("/api/nodes");
    showError(data.error);
    body.replaceChildren(data.items.length ? el("table", { id: "nodes" },
      el("thead", {}, el("tr", {}, ["Node", "State", "Clock skew", "Labels", "Version", "Started", "Last seen", "Running"].map(h => el("th", { text: h })))),
      el("tbody", {}, data.items.map(n => el("tr", { "data-node": n.node },
        el("td", {}, el("strong", { text: n.node })), el("td", {}, badge(n.state)),
        el("td", { class: "mono", text: n.skew === null ? "unknown" : `${n.skew >= 0 ? "+" : ""}${n.skew.toFixed(2)}s` }),
        el("td", {}, Object.entries(n.labels).sort().map(([k, v]) => el("span", { class: "chip", text: `${k}=${v}` }))),
        el("td", { class: "mono", text: n.version }),
        el("td", {}, el("span", { text: localTime(n.startedAt) }), el("span", { class: "sub", text: relative(n.startedAt) })),
        el("td", { text: n.lastSeen ? relative(n.lastSeen) : "—" }),
        el("td", {}, n.running.length ? n.running.map(r => el("a", { class: "chip", href: taskHref(...r.split("/")), text: r })) : el("span", { class: "sub", text: "idle" }))))))
      : el("div", { class: "empty", text: "No live executors." }));
  };
}

// ---- routing and live updates ---------------------------------------------------------------------------------
let refresher = null, running = false, again = false;

async function refresh() {
  if (!refresher) return;
  if (running) { again = true; return; }
  running = true;
  try { await refresher(); }
  catch (e) { showError(e.message); }
  finally {
    running = false;
    if (again) { again = false; refresh(); }
  }
}

function render() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const view = parts[0] || "tasks";
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", a.dataset.view === view || (view === "task" && a.dataset.view === "tasks")));
  refresher = view === "timeline" ? mountTimeline()
    : view === "nodes" ? mountNodes()
    : view === "task" && parts.length >= 3 ? mountTask(parts[1], parts[2])
    : mountTasks();
  document.title = `dtask · ${view}`;
  refresh();
}

function connect() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
  events.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
  events.addEventListener("change", () => refresh());
}

window.addEventListener("hashchange", render);
// The timeline's window slides with the clock even when nothing changes.
setInterval(() => { if (location.hash.startsWith("#/timeline")) refresh(); }, 10000);
render();
connect();
