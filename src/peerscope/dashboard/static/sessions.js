// Recent sessions (matches, calls) with their latency, from REST.

import { el } from "./dom.js";
import { duration, ms } from "./format.js";

export class SessionsPanel {
  constructor(parent) {
    this.body = el("tbody");
    parent.append(el("table", { id: "sessions" },
      el("thead", {}, el("tr", {}, ...["Session", "Started", "Duration", "Peers",
                                        "Avg latency", "p95 latency"]
        .map((label) => el("th", { scope: "col" }, label)))),
      this.body));
    this.show([]);
  }

  // sessions: as stream.js's readSession gives them.
  show(sessions) {
    if (!sessions.length) {
      this.body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "empty" },
                                                "No sessions yet")));
      return;
    }
    this.body.replaceChildren(...sessions.map((s) => el("tr", {},
      el("td", { title: s.id }, s.name),
      el("td", {}, new Date(s.startedAt * 1000).toLocaleString()),
      el("td", {}, s.durationS === null ? "running" : duration(s.durationS)),
      el("td", { title: s.peers.join(", ") }, String(s.peers.length)),
      el("td", {}, ms(s.averageLatencyMs)),
      el("td", {}, ms(s.p95LatencyMs)))));
  }
}
