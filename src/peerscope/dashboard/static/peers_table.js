// The peers table: sortable by any column, filtered by text, 200 peers a page. The first
// page is the frame's own list (the 200 worst peers); further pages come from REST. Each row
// says which peer is in trouble and why (the server's sentence, coloured by its kind); a
// peer that stopped answering shows "–" for what it cannot measure and when it last did.

import { el, setText } from "./dom.js";
import { ago, bytes, duration, fixed, ms, percent } from "./format.js";
import { bandClass, scoreText } from "./scale.js";

export const PAGE_SIZE = 200;
const STATUSES = ["connected", "degraded", "disconnected"];
const STATUS_RANK = { disconnected: 0, degraded: 1, connected: 2 };
const REASONS = ["ok", "unmeasured", "stale", "no_reply", "idle", "loss", "latency", "jitter",
                 "port_closed", "unresolved"];

function lastReply(peer, now) {
  if (peer.latencyMs !== null || peer.lastMeasuredAt === null) return "";
  return `last reply ${ago(peer.lastMeasuredAt, now)}`;
}

// text(peer, now): the cell's text; note(peer, now): a smaller second line, "" for none;
// classes(peer): the cell's classes beside col-KEY, for what colours it.
const COLUMNS = [
  { key: "name", label: "Name", text: (p) => p.name ?? "",
    note: (p) => (p.simulated ? "simulated" : ""), noteClass: "tag",
    sort: (p) => (p.name ?? "").toLowerCase() },
  { key: "id", label: "ID", text: (p) => p.id, sort: (p) => p.id },
  { key: "status", label: "Status", text: (p) => p.status, sort: (p) => STATUS_RANK[p.status],
    classes: (p) => `badge status-${STATUSES.includes(p.status) ? p.status : "unknown"}` },
  { key: "reason", label: "Why", text: (p) => p.statusText, sort: (p) => p.statusText,
    classes: (p) => `reason-${REASONS.includes(p.reasonKind) ? p.reasonKind : "unknown"}` },
  { key: "latency", label: "Latency", text: (p) => ms(p.latencyMs), note: lastReply,
    sort: (p) => p.latencyMs },
  { key: "jitter", label: "Jitter", text: (p) => ms(p.jitterMs), sort: (p) => p.jitterMs },
  { key: "loss", label: "Loss", text: (p) => percent(p.lossPercent), sort: (p) => p.lossPercent },
  { key: "mos", label: "MOS", text: (p) => fixed(p.mos, 2), sort: (p) => p.mos },
  { key: "quality", label: "Quality", text: (p) => scoreText(p.quality, p.grade, p.band),
    sort: (p) => p.quality, classes: (p) => bandClass(p.band) },
  { key: "traffic", label: "Traffic ↑/↓",
    text: (p) => `${bytes(p.bytesSent)} / ${bytes(p.bytesReceived)}`,
    sort: (p) => p.bytesSent + p.bytesReceived },
  { key: "uptime", label: "Connected for", text: (p) => duration(p.connectedS),
    sort: (p) => p.connectedS },
  { key: "seen", label: "Last seen", text: (p, now) => ago(p.lastSeen, now),
    sort: (p) => p.lastSeen },
];

function compare(a, b) {
  // Missing figures sort last whichever the direction.
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1;
  if (b === null || b === undefined) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function matches(peer, needle) {
  if (!needle) return true;
  const haystack = [peer.name ?? "", peer.id, peer.status, peer.statusText,
                    peer.address ?? "",
                    ...Object.entries(peer.labels).map(([k, v]) => `${k}=${v}`)];
  return haystack.some((text) => text.toLowerCase().includes(needle));
}

export class PeersTable {
  // fetchPage(offset) -> Promise<{peers, total} | null (not read: keep what is shown)>,
  // for pages after the first.
  constructor(parent, { onSelect, fetchPage }) {
    this.onSelect = onSelect;
    this.fetchPage = fetchPage;
    this.page = 0;
    this.sortKey = null; // null: as listed (worst quality first)
    this.descending = false;
    this.filter = "";
    this.rows = new Map(); // peer id -> {tr, cells}
    this.order = [];
    this.peers = [];
    this.total = 0;
    this.now = 0;

    this.headers = COLUMNS.map((column) => {
      const th = el("th", { scope: "col", dataset: { key: column.key } }, column.label);
      th.addEventListener("click", () => this.sortBy(column.key));
      return th;
    });
    this.body = el("tbody");
    this.filterInput = el("input", { type: "search", id: "peer-filter",
                                     placeholder: "filter: name, id, status, why, label" });
    this.filterInput.addEventListener("input", () => {
      this.filter = this.filterInput.value.trim().toLowerCase();
      this.render();
    });
    this.pageNote = el("span", { id: "peer-page" });
    this.previous = el("button", { type: "button", id: "peer-previous" }, "‹ previous");
    this.next = el("button", { type: "button", id: "peer-next" }, "next ›");
    this.previous.addEventListener("click", () => this.goTo(this.page - 1));
    this.next.addEventListener("click", () => this.goTo(this.page + 1));
    parent.append(
      el("div", { className: "toolbar" }, this.filterInput, this.previous, this.pageNote,
         this.next),
      el("table", { id: "peers" }, el("thead", {}, el("tr", {}, ...this.headers)), this.body));
  }

  // The latest frame: its peers are page one; on a later page, re-read that page.
  showFrame(frame) {
    this.now = frame.time;
    this.total = frame.peersTotal;
    if (this.page === 0) {
      this.peers = frame.peers;
      this.render();
    } else {
      this.refreshPage();
    }
  }

  async refreshPage() {
    const page = this.page;
    const found = await this.fetchPage(page * PAGE_SIZE);
    if (found === null || page !== this.page) return;
    this.peers = found.peers;
    this.total = found.total;
    this.render();
  }

  goTo(page) {
    const last = Math.max(0, Math.ceil(this.total / PAGE_SIZE) - 1);
    this.page = Math.min(Math.max(0, page), last);
    if (this.page > 0) this.refreshPage();
    this.render();
  }

  sortBy(key) {
    this.descending = this.sortKey === key ? !this.descending : false;
    this.sortKey = key;
    this.headers.forEach((th) => {
      th.classList.toggle("sorted", th.dataset.key === key);
      th.classList.toggle("descending", th.dataset.key === key && this.descending);
    });
    this.render();
  }

  visible() {
    const shown = this.peers.filter((peer) => matches(peer, this.filter));
    if (this.sortKey !== null) {
      const key = COLUMNS.find((column) => column.key === this.sortKey).sort;
      const sign = this.descending ? -1 : 1;
      shown.sort((a, b) => sign * compare(key(a), key(b)) || compare(a.id, b.id));
    }
    return shown;
  }

  render() {
    const shown = this.visible();
    const seen = new Set();
    const order = shown.map((peer) => {
      seen.add(peer.id);
      const row = this.rows.get(peer.id) ?? this.createRow(peer.id);
      COLUMNS.forEach((column, i) => this.fill(row.cells[i], column, peer));
      return row.tr;
    });
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) this.rows.delete(id);
    }
    // Moving rows costs a layout: only when the order changed.
    if (order.length !== this.order.length || order.some((tr, i) => tr !== this.order[i])) {
      this.body.replaceChildren(...order);
      this.order = order;
    }
    const first = this.page * PAGE_SIZE;
    setText(this.pageNote, this.total === 0 ? "no peers"
      : `${first + 1}–${Math.min(first + PAGE_SIZE, this.total)} of ${this.total}`
        + (this.filter ? ` (${shown.length} match)` : ""));
    this.previous.disabled = this.page === 0;
    this.next.disabled = first + PAGE_SIZE >= this.total;
  }

  // Cells are rewritten every frame: only what changed is touched.
  fill(cell, column, peer) {
    setText(cell.text, column.text(peer, this.now));
    if (cell.note !== null) {
      const note = column.note(peer, this.now);
      setText(cell.note, note);
      if (cell.note.hidden !== (note === "")) cell.note.hidden = note === "";
    }
    if (column.classes) {
      const className = `col-${column.key} ${column.classes(peer)}`;
      if (cell.td.className !== className) cell.td.className = className;
    }
  }

  createRow(id) {
    const cells = COLUMNS.map((column) => {
      const text = document.createTextNode("");
      const note = column.note ? el("span", { className: column.noteClass ?? "note",
                                              hidden: true }) : null;
      return { td: el("td", { className: `col-${column.key}` }, text, note), text, note };
    });
    const tr = el("tr", { dataset: { peer: id } }, ...cells.map((cell) => cell.td));
    tr.addEventListener("click", () => this.onSelect(id));
    const row = { tr, cells };
    this.rows.set(id, row);
    return row;
  }
}
