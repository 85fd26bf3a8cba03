// The analyst desk's behaviour: select cards, give verdicts (buttons and keys), undo, poll the live view.
// The server renders every piece of HTML (escaped); this script only fetches and places it.
"use strict";
(function () {
  const LIVE_MS = 5000;
  const QUEUE_MS = 15000;
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const queueBox = document.getElementById("queue");
  if (!queueBox) return; // the login page
  const detail = document.getElementById("detail");
  const liveBox = document.getElementById("live");
  const toast = document.getElementById("toast");
  const undoStack = [];
  let selected = null; // the customer id of the selected card
  let busy = false;

  const rows = () => Array.from(queueBox.querySelectorAll("tr.card-row"));
  const query = () => new URLSearchParams({ day: queueBox.dataset.day, min_score: queueBox.dataset.minScore });

  function say(text, error) {
    toast.textContent = text;
    toast.className = error ? "error" : "";
    toast.hidden = false;
  }

  async function fetchText(url) {
    const r = await fetch(url, { credentials: "same-origin" });
    if (r.status === 401) { window.location = "/desk/login"; return null; }
    return r.text();
  }

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (r.status === 401) window.location = "/desk/login"; // signed out, or the key changed
    if (!r.ok) {
      const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || r.status);
      throw new Error(detail);
    }
    return data;
  }

  async function select(row) {
    if (!row) { selected = null; detail.innerHTML = '<p class="empty">Nothing selected.</p>'; return; }
    rows().forEach((r) => r.classList.toggle("selected", r === row));
    row.scrollIntoView({ block: "nearest" });
    selected = row.dataset.customer;
    const params = new URLSearchParams({ day: row.dataset.day, customer: row.dataset.customer });
    const html = await fetchText("/desk/card?" + params);
    if (html !== null && selected === row.dataset.customer) detail.innerHTML = html;
  }

  function selectedRow() {
    return rows().find((r) => r.dataset.customer === selected) || null;
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(selectedRow());
    select(all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))]);
  }

  function picked(row) {
    const card = detail.querySelector(".card");
    if (card && card.dataset.customer === row.dataset.customer) {
      return Array.from(card.querySelectorAll("input.pick:checked")).map((i) => Number(i.value));
    }
    return row.dataset.alerted.split(",").map(Number);
  }

  async function verdict(kind) {
    const row = selectedRow();
    if (!row || busy) return;
    const transactions = picked(row);
    if (!transactions.length) { say("Tick at least one transaction.", true); return; }
    busy = true;
    try {
      const body = { day: row.dataset.day, customer: Number(row.dataset.customer), transactions, verdict: kind };
      const done = await post("/desk/verdict", body);
      undoStack.push(body);
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      const count = document.getElementById("open-count");
      if (count) count.textContent = String(rows().length);
      say(`Card ${done.customer}: ${kind} (${done.labelled} transactions). Press u to undo.`);
      busy = false;
      await select(next);
    } catch (e) {
      say(`Verdict refused: ${e.message}`, true);
    } finally {
      busy = false;
    }
  }

  async function undo(body) {
    if (!body || busy) return;
    busy = true;
    try {
      const done = await post("/desk/undo", body);
      const at = undoStack.indexOf(body);
      if (at >= 0) undoStack.splice(at, 1);
      say(`Card ${done.customer}: verdict undone, back in the queue.`);
      selected = String(body.customer);
      await refreshQueue();
      await select(selectedRow());
    } catch (e) {
      say(`Undo refused: ${e.message}`, true);
    } finally {
      busy = false;
    }
  }

  async function refreshQueue() {
    const html = await fetchText("/desk/queue?" + query());
    if (html === null) return;
    queueBox.innerHTML = html;
    const row = selectedRow();
    if (row) row.classList.add("selected");
  }

  async function refreshLive() {
    const html = await fetchText("/desk/live?" + new URLSearchParams({ day: liveBox.dataset.day }));
    if (html !== null) liveBox.innerHTML = html;
  }

  queueBox.addEventListener("click", (e) => {
    const button = e.target.closest("button.undo");
    if (button) {
      const body = {
        day: button.dataset.day, customer: Number(button.dataset.customer),
        transactions: button.dataset.alerted.split(",").map(Number), verdict: "fraud",
      };
      undo(body);
      return;
    }
    const row = e.target.closest("tr.card-row");
    if (row) select(row);
  });
  detail.addEventListener("click", (e) => {
    const button = e.target.closest("button.verdict");
    if (button) verdict(button.dataset.verdict);
  });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest("input, select, textarea")) return;
    const actions = {
      j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
      f: () => verdict("fraud"), g: () => verdict("genuine"), u: () => undo(undoStack[undoStack.length - 1]),
      r: () => { refreshQueue(); refreshLive(); },
    };
    if (actions[e.key]) { e.preventDefault(); actions[e.key](); }
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/desk/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() } });
    window.location = "/desk/login";
  });

  refreshLive();
  setInterval(refreshLive, LIVE_MS);
  setInterval(() => { if (!busy) refreshQueue(); }, QUEUE_MS);
  const first = rows()[0];
  if (first) select(first);
})();
