// One peer's charts, opened from the table: latency as a p50–p95 band (SmokePing's "smoke")
// with loss marks, jitter, and quality with MOS.
//
// The band comes from REST (per-bucket percentiles of the peer's latency ring); jitter,
// quality and loss have no stored history, so they are charted from the moment the peer is
// opened, one reading per second.

import { COLORS, TimeChart } from "./charts.js";
import { el, setText } from "./dom.js";
import { fixed, ms } from "./format.js";
import { readBands, readPeer } from "./stream.js";

const READ_EVERY_S = 1;
const BAND_EVERY_S = 5;

export class PeerDetail {
  constructor(parent, api, clock, onError) {
    this.api = api;
    this.onError = onError;
    this.id = null;
    this.title = el("h2", { id: "peer-title" });
    this.summary = el("p", { id: "peer-summary" });
    const close = el("button", { type: "button", id: "peer-close" }, "close");
    close.addEventListener("click", () => this.close());
    const charts = el("div", { className: "charts" });
    this.node = el("section", { id: "peer-detail", hidden: true },
                   el("div", { className: "toolbar" }, this.title, close), this.summary, charts);
    parent.append(this.node);
    this.latency = new TimeChart(charts, {
      clock, title: "Latency (band: p50–p95; marks: loss)", unit: "ms", format: ms,
      series: [{ label: "p50", color: COLORS.blue, width: 2 },
               { label: "p95", color: "rgba(59,130,246,0.5)", width: 1 },
               { label: "loss", color: COLORS.red, scale: "loss", width: 0,
                 points: { show: true, size: 7, fill: COLORS.red },
                 format: (v) => fixed(v, 1, " %") }],
      extraAxes: [{ scale: "loss", unit: "loss %", format: (v) => fixed(v, 0, " %"),
                    range: () => [0, 100] }],
      bands: [{ series: [2, 1], fill: "rgba(59,130,246,0.2)" }],
    });
    this.jitter = new TimeChart(charts, {
      clock, title: "Jitter", unit: "ms", format: ms,
      series: [{ label: "jitter", color: COLORS.orange }],
    });
    this.quality = new TimeChart(charts, {
      clock, title: "Quality", unit: "score", format: (v) => fixed(v, 0),
      series: [{ label: "score", color: COLORS.green },
               { label: "MOS", color: COLORS.purple, scale: "mos",
                 format: (v) => fixed(v, 2) }],
      extraAxes: [{ scale: "mos", unit: "MOS", format: (v) => fixed(v, 1),
                    range: () => [1, 4.5] }],
    });
    this.losses = []; // [time, loss %] read since the peer was opened
    this.lastBand = 0;
    this.lastRead = 0;
  }

  open(id, range) {
    this.id = id;
    this.range = range;
    this.losses = [];
    for (const chart of [this.latency, this.jitter, this.quality]) chart.clear();
    this.lastBand = this.lastRead = 0;
    setText(this.title, `Peer ${id}`);
    this.node.hidden = false;
    this.node.scrollIntoView({ block: "nearest" });
  }

  close() {
    this.id = null;
    this.node.hidden = true;
  }

  setRange(range) {
    this.range = range;
    this.lastBand = 0;
  }

  // Called every frame (`now`: the frame's time, or the server's clock when the peer is
  // opened); reads REST at its own pace, by the frames' times so that 1 s frames give one
  // reading each.
  async refresh(now) {
    const id = this.id;
    if (id === null) return;
    try {
      if (now - this.lastRead >= READ_EVERY_S) {
        this.lastRead = now;
        this.showPeer(readPeer(await this.api.peer(id)), now);
      }
      if (now - this.lastBand >= BAND_EVERY_S) {
        this.lastBand = now;
        const history = await this.api.peerLatency(id, this.range.seconds, this.range.bandStep);
        if (id === this.id) this.showBands(readBands(history));
      }
    } catch (error) {
      this.onError(error);
    }
    if (id === this.id) {
      for (const chart of [this.latency, this.jitter, this.quality]) {
        chart.draw(now, this.range.seconds);
      }
    }
  }

  showPeer(peer, now) {
    if (peer.id !== this.id) return;
    setText(this.title, peer.name ? `${peer.name} (${peer.id})` : peer.id);
    setText(this.summary, `${peer.status} · latency ${ms(peer.latencyMs)} · jitter `
      + `${ms(peer.jitterMs)} · loss ${fixed(peer.lossPercent, 1, " %")} · MOS `
      + `${fixed(peer.mos, 2)} · quality ${fixed(peer.quality, 0)} ${peer.grade ?? ""}`);
    this.losses.push([now, peer.lossPercent]);
    while (this.losses[0][0] < now - this.range.seconds) this.losses.shift();
    this.jitter.append(now, [peer.jitterMs]);
    this.quality.append(now, [peer.quality, peer.mos]);
  }

  // A loss mark on each bucket in which the peer reported loss (its highest figure there).
  showBands(bands) {
    const step = this.range.bandStep;
    const loss = bands.times.map((start) => {
      const inside = this.losses.filter(([t, value]) => t >= start && t < start + step
                                                          && value > 0);
      return inside.length ? Math.max(...inside.map(([, value]) => value)) : null;
    });
    this.latency.replace(bands.times, [bands.p50, bands.p95, loss]);
  }
}
