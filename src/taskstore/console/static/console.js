// taskstore console (docs/console.md). No library, no build step.
// Everything that comes from the server is shown with textContent or setAttribute on
// attributes that cannot run script; nothing is ever parsed as HTML.
"use strict";

(() => {
  const PAGE = 50;            // rows per page
  const MAX_ROWS = 2000;      // rows kept in the table; older ones drop off the bottom
  const MAX_HISTORY = 100;    // status history entries kept per task
  const SAMPLES = 60;         // stats samples in the sparklines (one a second)
  const BIG = 2048;           // payloads larger than this start collapsed
  const STATUSES = ["working", "input_required", "completed", "failed", "cancelled"];
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);

  const S = {
    me: null,
    owner: "",            // the owner asked for in the URL ("" = the identity's own)
    status: "",
    method: "",
    rows: new Map(),      // task id -> {t: summary, tr, cells}
    cursor: null,
    truncated: false,
    listReady: false,
    queued: [],
    gen: 0,
    history: new Map(),   // task id -> [{status, at}]
    counts: null,
    offset: 0,            // server clock - local clock, ms
    detailId: null,
    detail: null,
    detailTimer: null,
    drafts: new Map(),    // answer drafts by input key
    open: new Map(),      // which <details> of the detail view are open, by label
    samples: [],
    es: null,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "class") node.className = value;
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    add(node, children);
    return node;
  }

  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach((c) => add(node, c));
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function statusClass(status) {
    return STATUSES.includes(status) ? "st st-" + status : "st";
  }

  function url(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
    }
    const text = query.toString();
    return text ? path + "?" + text : path;
  }

  async function api(path, params, body) {
    const init = { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.headers["X-Taskstore-Console"] = "1";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url(path, params), init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const error = new Error((data && data.error) || response.status + " " + response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // -- time -------------------------------------------------------------------------------

  const now = () => Date.now() + S.offset;

  function iso(ms) {
    return ms === null || ms === undefined ? "—" : new Date(ms).toISOString();
  }

  function ago(ms) {
    const s = Math.max(0, Math.round((now() - ms) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function left(expiresAt) {
    if (expiresAt === null || expiresAt === undefined) return "never";
    let s = Math.floor((expiresAt - now()) / 1000);
    if (s <= 0) return "expired";
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const two = (n) => (n < 10 ? "0" : "") + n;
    return (h ? h + ":" + two(m) : m) + ":" + two(s);
  }

  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    if (n < 1024 * 1024 * 1024) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(2) + " GiB";
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // -- URL state -----------------------------------------------------------------------------

  function readUrl() {
    const query = new URLSearchParams(location.search);
    S.owner = query.get("owner") || "";
    S.status = STATUSES.includes(query.get("status")) ? query.get("status") : "";
    S.method = query.get("method") || "";
    const match = location.pathname.match(/^\/tasks\/(.+)$/);
    S.detailId = match ? decodeURIComponent(match[1]) : null;
  }

  function pageUrl(taskId) {
    const path = taskId ? "/tasks/" + encodeURIComponent(taskId) : "/";
    return url(path, { owner: S.owner, status: S.status, method: S.method });
  }

  function ownerParam() {
    return { owner: S.owner };
  }

  // -- the live feed -------------------------------------------------------------------------

  function setLive(on, text) {
    const live = $("live");
    live.className = on ? "live on" : "live off";
    setText(live, text || (on ? "● live" : "○ reconnecting…"));
  }

  function connect() {
    if (S.es) S.es.close();
    S.listReady = false;
    S.queued = [];
    const es = new EventSource(url("/api/events", ownerParam()));
    S.es = es;
    es.addEventListener("hello", (e) => {
      const data = JSON.parse(e.data);
      S.offset = data.serverTime - Date.now();
      setLive(true);
      reloadList();
      if (S.detailId) refreshDetail();
    });
    es.addEventListener("tasks", (e) => {
      const data = JSON.parse(e.data);
      if (data.counts) setCounts(data.counts);
      if (S.listReady) applyAll(data.tasks);
      else S.queued.push(...data.tasks);
    });
    es.addEventListener("counts", (e) => setCounts(JSON.parse(e.data).counts));
    es.addEventListener("stats", (e) => addSample(JSON.parse(e.data)));
    es.addEventListener("reset", () => {
      S.counts = null;
      reloadList();
      if (S.detailId) refreshDetail();
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) setLive(false, "○ disconnected (reload the page)");
      else setLive(false);
    };
  }

  // -- counts and filters ----------------------------------------------------------------------

  function buildFilters() {
    const group = $("status-filter");
    for (const status of ["", ...STATUSES]) {
      const button = el("button", {
        type: "button",
        class: "filter" + (status ? " " + statusClass(status) : ""),
        "data-status": status,
        onclick: () => {
          S.status = S.status === status ? "" : status;
          history.replaceState(null, "", pageUrl(S.detailId));
          markFilters();
          reloadList();
        },
      }, el("span", { class: "name" }, status || "all"), " ", el("span", { class: "count" }, "–"));
      group.appendChild(button);
    }
    markFilters();
    const input = $("method-filter");
    input.value = S.method;
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        S.method = input.value;
        history.replaceState(null, "", pageUrl(S.detailId));
        reloadList();
      }, 250);
    });
  }

  function markFilters() {
    for (const button of $("status-filter").children) {
      button.classList.toggle("active", button.getAttribute("data-status") === S.status);
    }
  }

  function setCounts(counts) {
    S.counts = counts;
    let total = 0;
    for (const status of STATUSES) total += counts[status] || 0;
    for (const button of $("status-filter").children) {
      const status = button.getAttribute("data-status");
      const n = status ? counts[status] || 0 : total;
      setText(button.querySelector(".count"), String(n));
    }
  }

  function matches(t) {
    if (S.status && t.status !== S.status) return false;
    if (S.method && !t.method.includes(S.method)) return false;
    return true;
  }

  // -- the list ------------------------------------------------------------------------------

  async function reloadList() {
    const gen = ++S.gen;
    S.listReady = false;
    let data;
    try {
      data = await api("/api/tasks", { owner: S.owner, status: S.status, method: S.method, limit: PAGE });
    } catch (error) {
      if (gen === S.gen) showListError(error);
      return;
    }
    if (gen !== S.gen) return;
    S.offset = data.serverTime - Date.now();
    $("rows").replaceChildren();
    S.rows.clear();
    S.truncated = false;
    S.cursor = data.nextCursor;
    for (const t of data.tasks) appendRow(t);
    S.listReady = true;
    const queued = S.queued;
    S.queued = [];
    applyAll(queued);
    await fillPage(gen);
    footer();
  }

  async function fillPage(gen) {
    // a filter that matches little: keep reading (each request reads a bounded number)
    let rounds = 0;
    while (S.cursor && S.rows.size < PAGE && rounds < 20 && gen === S.gen) {
      rounds += 1;
      await loadMore();
    }
  }

  async function loadMore() {
    if (!S.cursor) return;
    const gen = S.gen;
    const button = $("more");
    button.disabled = true;
    try {
      const data = await api("/api/tasks", {
        owner: S.owner, status: S.status, method: S.method, limit: PAGE, cursor: S.cursor,
      });
      if (gen !== S.gen) return;
      S.cursor = data.nextCursor;
      for (const t of data.tasks) if (!S.rows.has(t.taskId)) appendRow(t);
    } catch (error) {
      showListError(error);
    } finally {
      button.disabled = false;
      footer();
    }
  }

  function showListError(error) {
    setText($("footer-text"), "Could not load tasks: " + error.message);
  }

  function footer() {
    $("empty").hidden = S.rows.size > 0 || !S.listReady;
    $("more").hidden = !S.cursor || S.truncated;
    let text = S.rows.size + " shown";
    if (S.truncated) text += " · older rows dropped from view as new tasks arrived: reload to page further";
    setText($("footer-text"), text);
    setText($("shown"), S.rows.size + (S.cursor && !S.truncated ? "+" : "") + " shown");
  }

  function makeRow(t) {
    const link = el("a", { href: pageUrl(t.taskId), title: t.taskId, class: "tid" }, t.taskId);
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      openDetail(t.taskId, true);
    });
    const cells = {
      method: el("td", { class: "method" }),
      status: el("td"),
      message: el("td", { class: "message" }),
      updated: el("td", { class: "time" }),
      expires: el("td", { class: "time" }),
    };
    const tr = el("tr", { "data-id": t.taskId }, el("td", null, link), cells.method, cells.status,
      cells.message, cells.updated, cells.expires);
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      openDetail(t.taskId, true);
    });
    const row = { t, tr, cells };
    fillRow(row, t);
    return row;
  }

  function fillRow(row, t) {
    row.t = t;
    const cells = row.cells;
    setText(cells.method, t.method);
    cells.method.title = t.method;
    const badge = el("span", { class: statusClass(t.status) }, t.status);
    const flags = [];
    if (t.pendingInputs) flags.push(el("span", { class: "flag" }, t.pendingInputs + " input" + (t.pendingInputs > 1 ? "s" : "")));
    if (t.cancelRequested && !TERMINAL.has(t.status)) flags.push(el("span", { class: "flag" }, "cancel requested"));
    cells.status.replaceChildren(badge, ...flags);
    setText(cells.message, t.statusMessage === null ? "" : t.statusMessage);
    cells.message.title = t.statusMessage === null ? "" : t.statusMessage;
    cells.updated.title = iso(t.lastUpdatedAt);
    cells.expires.title = t.expiresAt === null ? "no expiry" : iso(t.expiresAt);
    row.tr.classList.toggle("selected", t.taskId === S.detailId);
    timeCells(row);
  }

  function timeCells(row) {
    setText(row.cells.updated, ago(row.t.lastUpdatedAt));
    setText(row.cells.expires, left(row.t.expiresAt));
  }

  function appendRow(t) {
    const row = makeRow(t);
    S.rows.set(t.taskId, row);
    $("rows").appendChild(row.tr);
    seen(t);
  }

  function insertRow(t) {
    const row = makeRow(t);
    const body = $("rows");
    let before = null;
    for (let tr = body.firstElementChild; tr; tr = tr.nextElementSibling) {
      const other = S.rows.get(tr.getAttribute("data-id"));
      if (other && other.t.seq < t.seq) { before = tr; break; }
    }
    body.insertBefore(row.tr, before);
    S.rows.set(t.taskId, row);
    while (S.rows.size > MAX_ROWS) {
      const last = body.lastElementChild;
      S.rows.delete(last.getAttribute("data-id"));
      last.remove();
      S.truncated = true;
    }
  }

  function removeRow(row) {
    row.tr.remove();
    S.rows.delete(row.t.taskId);
  }

  function applyAll(items) {
    let touched = false;
    for (const t of items) {
      record(t);
      applyOne(t);
      if (t.taskId === S.detailId) touched = true;
    }
    if (items.length) footer();
    if (touched) scheduleDetail();
  }

  function applyOne(t) {
    const row = S.rows.get(t.taskId);
    if (t.removed) {
      if (row) removeRow(row);
      return;
    }
    if (row && t.lastUpdatedAt < row.t.lastUpdatedAt) return; // older than what is shown
    const wanted = matches(t);
    if (row) {
      if (wanted) fillRow(row, t);
      else removeRow(row);
      return;
    }
    if (!wanted) return;
    const body = $("rows");
    const last = body.lastElementChild && S.rows.get(body.lastElementChild.getAttribute("data-id"));
    if ((S.cursor || S.truncated) && last && t.seq < last.t.seq) return; // paging brings it
    insertRow(t);
  }

  // -- status history (what this page has seen) ----------------------------------------------

  function seen(t) {
    if (!S.history.has(t.taskId)) {
      S.history.set(t.taskId, [{ status: t.status, at: t.lastUpdatedAt, first: true }]);
      if (S.history.size > 5000) S.history.delete(S.history.keys().next().value);
    }
  }

  function record(t) {
    let entries = S.history.get(t.taskId);
    if (t.removed) {
      if (entries) entries.push({ status: "removed", at: now() });
      return;
    }
    const transitions = t.transitions || [];
    if (!entries) {
      if (!transitions.length) { seen(t); return; }
      entries = [];
      S.history.set(t.taskId, entries);
    }
    for (const [status, at] of transitions) {
      const last = entries[entries.length - 1];
      if (!last || last.status !== status) entries.push({ status, at });
    }
    if (entries.length > MAX_HISTORY) entries.splice(0, entries.length - MAX_HISTORY);
  }

  // -- the detail view -------------------------------------------------------------------------

  function openDetail(taskId, push) {
    S.detailId = taskId;
    S.detail = null;
    S.drafts.clear();
    if (push) history.pushState(null, "", pageUrl(taskId));
    for (const row of S.rows.values()) row.tr.classList.toggle("selected", row.t.taskId === taskId);
    const panel = $("detail");
    panel.hidden = false;
    panel.replaceChildren(el("p", { class: "note" }, "Loading…"));
    refreshDetail();
  }

  function closeDetail(push) {
    S.detailId = null;
    S.detail = null;
    $("detail").hidden = true;
    $("detail").replaceChildren();
    for (const row of S.rows.values()) row.tr.classList.remove("selected");
    if (push) history.pushState(null, "", pageUrl(null));
  }

  function scheduleDetail() {
    if (S.detailTimer) return;
    S.detailTimer = setTimeout(() => {
      S.detailTimer = null;
      refreshDetail();
    }, 150);
  }

  async function refreshDetail() {
    const taskId = S.detailId;
    if (!taskId) return;
    let data;
    try {
      data = await api("/api/task", { owner: S.owner, id: taskId });
    } catch (error) {
      if (S.detailId !== taskId) return;
      S.detail = null;
      $("detail").replaceChildren(closeButton(), el("h2", null, "Task not found"),
        el("p", { class: "note" }, error.status === 404 ? "No task with this id for this owner (it may have been deleted or evicted)." : error.message));
      return;
    }
    if (S.detailId !== taskId) return;
    S.offset = data.serverTime - Date.now();
    S.detail = data;
    record({ taskId: data.taskId, status: data.status, lastUpdatedAt: data.lastUpdatedAt,
      transitions: [[data.status, data.lastUpdatedAt]] });
    renderDetail(data);
  }

  function closeButton() {
    return el("button", { type: "button", class: "close", title: "close", onclick: () => closeDetail(true) }, "×");
  }

  function remember(details, label) {
    details.open = S.open.has(label) ? S.open.get(label) : details.open;
    details.addEventListener("toggle", () => S.open.set(label, details.open));
    return details;
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function payloadBlock(label, payload, name, key) {
    if (!payload) return null;
    const details = el("details", { class: "payload" });
    const size = el("span", { class: "size" }, bytes(payload.bytes));
    if (payload.truncated) {
      details.appendChild(el("summary", null, label, " ", size, " (large: first 4 KiB shown)"));
      details.appendChild(el("pre", null, payload.preview + "\n…"));
      if (name) {
        details.appendChild(el("a", { href: url("/api/task/payload", { owner: S.owner, id: S.detailId, name }), download: name + ".json" }, "download all " + bytes(payload.bytes)));
      }
      return remember(details, key || label);
    }
    details.open = payload.bytes <= BIG;
    details.appendChild(el("summary", null, label, " ", size));
    details.appendChild(el("pre", null, pretty(payload.json)));
    return remember(details, key || label);
  }

  function section(title, ...children) {
    const body = children.flat().filter((c) => c);
    if (!body.length) return null;
    return el("section", null, el("h3", null, title), body);
  }

  function renderDetail(d) {
    const admin = S.me && S.me.admin;
    const terminal = TERMINAL.has(d.status);
    const expires = el("span", { id: "detail-ttl" }, left(d.expiresAt));
    const facts = el("dl", null,
      el("dt", null, "owner"), el("dd", null, d.owner),
      el("dt", null, "method"), el("dd", null, d.method),
      el("dt", null, "created"), el("dd", null, iso(d.createdAt)),
      el("dt", null, "last updated"), el("dd", null, iso(d.lastUpdatedAt)),
      el("dt", null, "ttl"), el("dd", null, d.ttlMs === null ? "unlimited" : d.ttlMs + " ms"),
      el("dt", null, "expires in"), el("dd", null, expires, d.expiresAt === null ? "" : " (" + iso(d.expiresAt) + ")"),
      el("dt", null, "poll interval"), el("dd", null, d.pollIntervalMs + " ms"),
      d.cancelRequestedAt !== null && [el("dt", null, "cancel requested"), el("dd", null, iso(d.cancelRequestedAt))],
      d.leaseHolder !== null && [el("dt", null, "worker lease"), el("dd", null, d.leaseHolder + " until " + iso(d.leaseExpiresAt))],
    );

    const history = el("ol", { class: "history" });
    for (const entry of S.history.get(d.taskId) || []) {
      history.appendChild(el("li", null, el("span", { class: statusClass(entry.status) }, entry.status), " ",
        el("time", null, iso(entry.at)), entry.first ? " (first seen)" : ""));
    }

    let actions = null;
    const actionNote = el("span", { class: "action-note", id: "action-note" });
    if (admin && !terminal) {
      const message = el("input", { id: "action-message", placeholder: "status message (optional)", size: 28 });
      const run = (path) => async () => {
        setText(actionNote, "…");
        try {
          await api(path, { owner: S.owner, id: d.taskId }, { message: message.value });
          setText(actionNote, "done");
          refreshDetail();
        } catch (error) {
          setText(actionNote, error.message);
        }
      };
      actions = section("Actions",
        el("div", { class: "actions" }, message,
          el("button", { type: "button", id: "action-cancel", onclick: run("/api/task/cancel") }, "Cancel"),
          el("button", { type: "button", id: "action-cancel-request", disabled: d.cancelRequestedAt !== null, onclick: run("/api/task/cancel-request") }, "Request cancellation"),
          actionNote));
    }

    const inputs = [];
    for (const [key, payload] of Object.entries(d.inputRequests)) {
      let method = "";
      if (payload && payload.json) {
        try { method = JSON.parse(payload.json).method || ""; } catch (e) { method = ""; }
      }
      const block = el("div", { class: "input-request", "data-key": key },
        el("h4", null, key, method ? " · " + method : ""),
        payloadBlock("request", payload, null, "request:" + key));
      if (admin && !terminal) {
        const initial = method === "elicitation/create" ? '{"action": "accept", "content": {}}' : "{}";
        const area = el("textarea", { rows: 3, class: "answer", "data-key": key, spellcheck: "false" });
        area.value = S.drafts.has(key) ? S.drafts.get(key) : initial;
        area.addEventListener("input", () => S.drafts.set(key, area.value));
        const note = el("span", { class: "action-note" });
        const send = el("button", { type: "button", class: "send-answer", onclick: async () => {
          let value;
          try { value = JSON.parse(area.value); } catch (e) { setText(note, "not JSON: " + e.message); return; }
          setText(note, "…");
          try {
            const out = await api("/api/task/answer", { owner: S.owner, id: d.taskId }, { answers: { [key]: value } });
            S.drafts.delete(key);
            setText(note, "accepted: " + out.accepted);
            refreshDetail();
          } catch (error) {
            setText(note, error.message);
          }
        } }, "Send answer");
        block.appendChild(el("div", { class: "answer-form" }, area, send, note));
      }
      inputs.push(block);
    }
    const answers = Object.entries(d.answers).map(([key, payload]) => payloadBlock(key, payload, null, "answer:" + key));

    const renderings = Object.entries(d.renderings).map(([label, payload]) => {
      const name = label === "2025-11-25" ? "task-2025-11-25" : label === "2026-07-28" ? "task-2026-07-28" : "result-2025-11-25";
      const block = payloadBlock(label, payload, name, "rendering:" + label);
      if (block && !S.open.has("rendering:" + label)) block.open = false;
      return block;
    });

    $("detail").replaceChildren(
      closeButton(),
      el("h2", { class: "tid" }, d.taskId),
      el("p", null, el("span", { class: statusClass(d.status) }, d.status), d.expired ? el("span", { class: "flag" }, "expired") : ""),
      d.statusMessage !== null ? el("p", { class: "status-message" }, d.statusMessage) : null,
      facts,
      actions,
      section("Status history (seen since this page opened)", history),
      section("Input requests", inputs),
      section("Answers", answers),
      section("Variables", payloadBlock("variables", d.variables, "variables")),
      section("Result", payloadBlock("result", d.result, "result")),
      section("Error", payloadBlock("error", d.error, "error")),
      section("Renderings", renderings),
    );
  }

  // -- server stats ------------------------------------------------------------------------------

  function addSample(sample) {
    S.samples.push(sample);
    if (S.samples.length > SAMPLES) S.samples.shift();
    setText($("stat-clients"), String(sample.clients));
    setText($("stat-ops"), String(Math.round(sample.opsPerSec)));
    setText($("stat-memory"), bytes(sample.memory));
    setText($("stat-cpu"), sample.cpuPercent.toFixed(0) + " %");
    spark("spark-clients", S.samples.map((s) => s.clients), true);
    spark("spark-ops", S.samples.map((s) => s.opsPerSec), true);
    spark("spark-memory", S.samples.map((s) => s.memory), false);
    spark("spark-cpu", S.samples.map((s) => s.cpuPercent), true);
    setText($("tasks-scope"), sample.scope === "server" ? "tasks per status (server)" : "tasks per status (this owner)");
    bar(sample.tasks || {});
  }

  // a sparkline of the last SAMPLES values: from zero, or (fromZero false) from the lowest
  function spark(id, values, fromZero) {
    const box = $(id);
    const high = Math.max(...values);
    const low = fromZero ? 0 : Math.min(...values);
    const span = high - low || Math.max(1, high);
    const step = 120 / (SAMPLES - 1);
    const offset = 120 - step * (values.length - 1);
    const y = (v) => (26 - ((v - low) / span) * 20).toFixed(1);
    const points = values.map((v, i) => (offset + i * step).toFixed(1) + "," + y(v)).join(" ");
    const area = svg("polygon", { points: offset.toFixed(1) + ",28 " + points + " 120,28", class: "area" });
    const line = svg("polyline", { points, class: "line" });
    box.replaceChildren(area, line);
  }

  function bar(tasks) {
    const box = $("tasks-bar");
    const legend = $("tasks-legend");
    let total = 0;
    for (const status of STATUSES) total += tasks[status] || 0;
    const parts = [];
    let x = 0;
    for (const status of STATUSES) {
      const n = tasks[status] || 0;
      if (n && total) {
        const w = (n / total) * 300;
        parts.push(svg("rect", { x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 14, class: "fill-" + status }));
        x += w;
      }
    }
    if (!total) parts.push(svg("rect", { x: 0, y: 0, width: 300, height: 14, class: "fill-none" }));
    box.replaceChildren(...parts);
    legend.replaceChildren(...STATUSES.map((status) =>
      el("span", { class: "key" }, el("i", { class: "swatch fill-" + status }), status + " " + (tasks[status] || 0))));
  }

  // -- identity and start-up -------------------------------------------------------------------

  function renderWho() {
    const me = S.me;
    const owner = S.owner || me.owner;
    const rights = [me.admin ? "admin" : null, me.impersonate ? "impersonate" : null].filter((r) => r);
    setText($("who"), (me.anonymous ? "anonymous " : "") + "user " + me.user +
      (rights.length ? " (" + rights.join(", ") + ")" : "") + " · owner " + owner);
    if (me.mayChooseOwner) {
      const form = $("owner-form");
      form.hidden = false;
      $("owner-input").value = owner;
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const value = $("owner-input").value.trim();
        location.assign(url("/", { owner: value === me.owner ? "" : value }));
      });
    }
  }

  function tick() {
    for (const row of S.rows.values()) timeCells(row);
    const ttl = $("detail-ttl");
    if (ttl && S.detail) setText(ttl, left(S.detail.expiresAt));
  }

  async function start() {
    readUrl();
    try {
      S.me = await api("/api/me");
    } catch (error) {
      setLive(false, "○ " + error.message);
      return;
    }
    renderWho();
    buildFilters();
    $("more").addEventListener("click", () => loadMore());
    window.addEventListener("popstate", () => {
      readUrl();
      if (S.detailId) openDetail(S.detailId, false);
      else closeDetail(false);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && S.detailId) closeDetail(true);
    });
    if (S.detailId) openDetail(S.detailId, false);
    connect();
    setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
