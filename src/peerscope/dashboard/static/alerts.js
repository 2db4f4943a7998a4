// Alerts: the active ones each frame lists, and the recent ones pushed as they fire or
// resolve, coloured by severity.

import { el } from "./dom.js";

const SEVERITIES = ["critical", "warning", "info"];
const RECENT = 50;

function severityClass(severity) {
  return `severity-${SEVERITIES.includes(severity) ? severity : "info"}`;
}

function item(alert) {
  const when = alert.time === null ? "" : new Date(alert.time * 1000).toLocaleTimeString();
  return el("li", { className: severityClass(alert.severity) },
            el("span", { className: "severity" }, alert.severity),
            el("span", { className: "state" }, alert.state),
            el("span", { className: "message" }, alert.message),
            alert.peerId === null ? null : el("span", { className: "peer" }, alert.peerId),
            el("time", {}, when));
}

export class AlertsPanel {
  constructor(parent) {
    this.active = el("ul", { id: "alerts-active", className: "alerts" });
    this.recentList = el("ul", { id: "alerts-recent", className: "alerts" });
    this.recent = [];
    this.shownActive = "";
    parent.append(el("h3", {}, "Active"), this.active, el("h3", {}, "Recent"),
                  this.recentList);
    this.showActive([]);
    this.renderRecent();
  }

  showActive(alerts) {
    const key = JSON.stringify(alerts); // redraw only on change: frames repeat the list
    if (key === this.shownActive) return;
    this.shownActive = key;
    this.active.replaceChildren(...(alerts.length
      ? alerts.map(item) : [el("li", { className: "empty" }, "No active alerts")]));
  }

  pushed(alert) {
    this.recent.unshift(alert);
    this.recent.length = Math.min(this.recent.length, RECENT);
    this.renderRecent();
  }

  renderRecent() {
    this.recentList.replaceChildren(...(this.recent.length
      ? this.recent.map(item) : [el("li", { className: "empty" }, "None since this page opened")]));
  }
}
