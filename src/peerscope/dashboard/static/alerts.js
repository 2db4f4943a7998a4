// The alerts panel: what fires now (each frame's `alerts`: severity, rule, peer, value and
// threshold, for how long, whether silenced, and a Silence action), the silences in force
// (alert_silences.js), and the recent events, read from the server's log on load and after
// each reconnect, then as /ws pushes them (any it left out read from the log). The
// section's heading counts what fires.

import { SilencesList } from "./alert_silences.js";
import { isNotFound } from "./api.js";
import { el, setText } from "./dom.js";
import { duration } from "./format.js";
import { readAlertEvent } from "./stream.js";

const RECENT = 50; // events kept and shown
const ACTIVE_SHOWN = 100; // firing alerts drawn; any beyond are counted, not drawn
const SILENCE_FOR = [["15 min", 900], ["1 h", 3600], ["4 h", 14400], ["24 h", 86400]];
const SILENCE_DEFAULT_S = 3600;

// A figure as the server's messages print it: "142.3", "100", "disconnected", "no data".
function figure(value) {
  if (value === null || value === undefined) return "no data";
  if (typeof value === "string") return value;
  return value.toFixed(1).replace(/\.0$/, "");
}

export class AlertsPanel {
  // api: api.js's Api; onSelectPeer(id): open a peer as the peers table does;
  // onError(error): a read that failed for another reason than alerting being off.
  constructor(parent, { heading, api, onSelectPeer, onError }) {
    this.heading = heading;
    this.api = api;
    this.onSelectPeer = onSelectPeer;
    this.onError = onError;
    this.off = false;
    this.now = 0; // the last frame's time (server epoch seconds)
    this.rows = new Map(); // alert key -> {li, figure, since, mark, controls}
    this.order = [];
    this.firing = 0;
    this.silencedCount = 0;
    this.recent = []; // events, oldest first, at most RECENT
    this.ids = new Set(); // the ids in `recent`
    this.lastId = null; // the newest event id seen, kept or not
    this.gap = null; // {after, upTo}: ids /ws left out, waiting to be read
    this.filling = false;
    this.recentQueued = false;

    this.offNote = el("p", { id: "alerts-off", className: "empty", hidden: true },
                      "Alerting is off on this server");
    this.error = el("p", { id: "alerts-error", className: "error", role: "status",
                           hidden: true });
    this.activeList = el("ul", { id: "alerts-active", className: "alerts" });
    this.noneActive = el("li", { className: "empty" }, "No active alerts");
    this.moreActive = el("li", { className: "empty" });
    this.recentList = el("ul", { id: "alerts-recent", className: "alerts" });
    this.silences = new SilencesList({
      api, onReadFailure: (error) => this.readFailed(error), onWrite: (text) => this.showError(text),
    });
    this.body = el("div", {}, el("h3", {}, "Active"), this.activeList,
                   el("h3", {}, "Silences"), this.silences.node,
                   el("h3", {}, "Recent"), this.recentList);
    parent.append(this.offNote, this.error, this.body);
    this.activeList.append(this.noneActive);
    this.renderRecent();
    this.showCounts();
  }

  // --- each frame: cheap when nothing changed ------------------------------------------

  showFrame(frame) {
    this.now = frame.time;
    this.showActive(frame.alerts, frame.alertsTotal);
    if (!this.off) this.silences.tick(frame.time);
  }

  // `alerts`: the most severe of the `total` firing (the server lists at most
  // max_alerts_in_message of them in a frame).
  showActive(alerts, total = alerts.length) {
    if (!total && !this.rows.size && this.firing === 0) return;
    const seen = new Set();
    let silenced = 0;
    const order = alerts.slice(0, ACTIVE_SHOWN).map((alert) => {
      seen.add(alert.key);
      const row = this.rows.get(alert.key) ?? this.createRow(alert);
      this.fill(row, alert);
      return row.li;
    });
    for (const alert of alerts) silenced += alert.silenced ? 1 : 0;
    for (const key of this.rows.keys()) {
      if (!seen.has(key)) this.rows.delete(key);
    }
    const more = total - order.length;
    setText(this.moreActive, more > 0 ? `… and ${more} more (GET /api/alerts lists all)` : "");
    // Moving list items costs a layout: only when the order changed.
    if (order.length !== this.order.length || order.some((li, i) => li !== this.order[i])) {
      this.activeList.replaceChildren(...(order.length ? order : [this.noneActive]),
                                      ...(more > 0 ? [this.moreActive] : []));
      this.order = order;
    }
    if (total !== this.firing || silenced !== this.silencedCount) {
      this.firing = total;
      this.silencedCount = silenced;
      this.showCounts();
    }
  }

  createRow(alert) {
    const figureNode = el("span", { className: "figure" });
    const since = el("span", { className: "since" });
    const mark = el("span", { className: "tag silenced", hidden: true }, "silenced");
    const choice = el("select", { className: "silence-for", title: "silence for" },
      ...SILENCE_FOR.map(([label, seconds]) => el("option", {
        value: String(seconds), selected: seconds === SILENCE_DEFAULT_S }, label)));
    const button = el("button", { type: "button", className: "silence" }, "Silence");
    button.addEventListener("click", () => this.silence(alert, Number(choice.value), button));
    const controls = el("span", { className: "actions" }, choice, button);
    let peer = null;
    if (alert.peerId !== null) {
      peer = el("button", { type: "button", className: "link peer", title: "open this peer" },
                alert.peerId);
      peer.addEventListener("click", () => this.onSelectPeer(alert.peerId));
    }
    const li = el("li", { className: `severity-${alert.severity}`, dataset: { key: alert.key } },
                  el("span", { className: "severity" }, alert.severity),
                  el("span", { className: "rule" }, alert.rule), peer, figureNode, since, mark,
                  controls);
    const row = { li, figure: figureNode, since, mark, controls };
    this.rows.set(alert.key, row);
    return row;
  }

  // Rows stay from frame to frame (so does a duration picked): only what changed is touched.
  fill(row, alert) {
    const className = `severity-${alert.severity}`;
    if (row.li.className !== className) row.li.className = className;
    setText(row.figure, `${alert.metric} ${figure(alert.value)} (threshold `
                        + `${figure(alert.threshold)})`);
    if (row.li.title !== alert.message) row.li.title = alert.message;
    setText(row.since, alert.startedAt === null ? ""
      : `for ${duration(this.now - alert.startedAt)}`);
    if (row.mark.hidden === alert.silenced) row.mark.hidden = !alert.silenced;
    if (row.controls.hidden !== alert.silenced) row.controls.hidden = alert.silenced;
  }

  showCounts() {
    const parts = [];
    if (this.off) parts.push("off");
    else if (this.firing) {
      parts.push(`${this.firing} firing`);
      if (this.silencedCount) parts.push(`${this.silencedCount} silenced`);
    }
    setText(this.heading, parts.length ? `Alerts (${parts.join(", ")})` : "Alerts");
  }

  // --- silencing -----------------------------------------------------------------------

  // Silences this alert (its rule, and its peer for a peer's) for `seconds`.
  async silence(alert, seconds, button) {
    const matchers = alert.peerId === null ? { alertname: alert.rule }
      : { alertname: alert.rule, peer_id: alert.peerId };
    button.disabled = true;
    try {
      await this.silences.add(matchers, seconds);
    } finally {
      button.disabled = false;
    }
  }

  showError(text) {
    setText(this.error, text);
    this.error.hidden = text === "";
  }

  // --- the log: on load, after each reconnect, then as pushed --------------------------

  // The /ws connection is (again) up: read what happened while it was not (the events
  // after the last one seen) and the silences; a 404 means this server has no alerting.
  async catchUp() {
    let since = this.lastId;
    let state;
    this.silences.reading();
    try {
      state = await this.api.alerts();
    } catch (error) {
      this.readFailed(error);
      return;
    }
    this.setOff(false);
    const last = state.last_event_id;
    if (since !== null && last < since) {
      // A new server process: its ids began again, so the ones kept say nothing of it.
      this.recent = [];
      this.ids.clear();
      this.lastId = null;
      this.renderRecent();
      since = null;
    }
    if (last > (since ?? 0) && !await this.readLog(since ?? 0, last)) return;
    await this.silences.load();
  }

  // An event /ws pushed the moment it happened. Ids grow by one, so a jump past the last
  // one seen means /ws left some out (a slow reader misses events rather than hold others
  // up): those are read from the log.
  pushed(event) {
    const before = this.lastId;
    this.addEvents([event]);
    if (before !== null && event.id > before + 1) this.fillGap(before, event.id);
  }

  // One read at a time: gaps found meanwhile are read together after it.
  async fillGap(after, upTo) {
    this.gap = this.gap ? { after: Math.min(this.gap.after, after),
                            upTo: Math.max(this.gap.upTo, upTo) } : { after, upTo };
    if (this.filling) return;
    this.filling = true;
    while (this.gap) {
      const { after: from, upTo: to } = this.gap;
      this.gap = null;
      await this.readLog(from, to);
    }
    this.filling = false;
  }

  // The events after `after` up to `upTo`, at most the RECENT newest: ids are consecutive,
  // so those start after upTo − RECENT, however many the log holds. False if it failed.
  async readLog(after, upTo) {
    try {
      const history = await this.api.alertHistory(Math.max(after, upTo - RECENT), RECENT);
      this.addEvents(history.events.map(readAlertEvent));
      return true;
    } catch (error) {
      this.readFailed(error);
      return false;
    }
  }

  addEvents(events) {
    let added = false;
    for (const event of events) {
      if (this.ids.has(event.id)) continue; // pushed and read both, or read twice
      this.recent.push(event);
      this.ids.add(event.id);
      this.lastId = Math.max(this.lastId ?? event.id, event.id);
      added = true;
    }
    if (!added) return;
    this.recent.sort((a, b) => a.id - b.id);
    while (this.recent.length > RECENT) this.ids.delete(this.recent.shift().id);
    // One tick may push hundreds (every peer behind a failed link): drawn once a frame.
    if (this.recentQueued) return;
    this.recentQueued = true;
    requestAnimationFrame(() => {
      this.recentQueued = false;
      this.renderRecent();
    });
  }

  renderRecent() {
    if (!this.recent.length) {
      this.recentList.replaceChildren(el("li", { className: "empty" }, "No alerts yet"));
      return;
    }
    this.recentList.replaceChildren(...this.recent.map((event) => {
      const state = event.state === "resolved" ? "resolved"
        : event.repeat ? "still firing" : "fired";
      const when = event.time === null ? "" : new Date(event.time * 1000).toLocaleTimeString();
      return el("li", { className: `severity-${event.severity} state-${event.state}`,
                        dataset: { id: String(event.id) } },
                el("time", {}, when),
                el("span", { className: "state" }, state),
                el("span", { className: "severity" }, event.severity),
                el("span", { className: "message" }, event.message),
                event.silenced ? el("span", { className: "tag silenced" }, "silenced") : null);
    }).reverse()); // newest first
  }

  // --- the server without alerting ------------------------------------------------------

  readFailed(error) {
    if (isNotFound(error)) this.setOff(true);
    else this.onError(error);
  }

  setOff(off) {
    if (off === this.off) return;
    this.off = off;
    this.offNote.hidden = !off;
    this.body.hidden = off;
    if (off) this.showError("");
    this.showCounts();
  }
}
