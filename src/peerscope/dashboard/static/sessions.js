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

  show(sessions) {
    if (!sessions.length) {
      this.body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "empty" },
                                                "No sessions yet")));
      return;
    }
    this.body.replaceChildren(...sessions.map((s) => el("tr", {},
      el("td", { title: s.game_id }, s.game_name),
      el("td", {}, new Date(s.started_at * 1000).toLocaleString()),
      el("td", {}, s.duration === null ? "running" : duration(s.duration)),
      el("td", { title: s.peers.join(", ") }, String(s.peers.length)),
      el("td", {}, ms(s.latency.average)),
      el("td", {}, ms(s.latency.p95 ?? null)))));
  }
}
