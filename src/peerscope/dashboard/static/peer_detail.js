// One peer's charts, opened from the table: latency as a p50–p95 band (SmokePing's "smoke")
// with a loss mark on each bucket that lost something, jitter, and quality score with MOS.
//
// Opening a peer reads its past for every chart from REST (`/latency?duration=…&step=…`:
// per bucket p50, p95, loss, jitter, score and MOS, oldest first); then each frame adds the
// peer's live figures (its entry in the frame, or from REST when the frame does not list
// it). The past is read again every few seconds: its complete buckets take the place of the
// live points they cover, and the live points since stay. Wherever nothing came back (an
// outage bucket, a live frame of an unanswered peer) the lines break.

import { COLORS, TimeChart } from "./charts.js";
import { el, setText } from "./dom.js";
import { ago, fixed, ms } from "./format.js";
import { bandClass, LOSS_CLASSES, scoreText } from "./scale.js";
import { readBuckets, readPeer } from "./stream.js";

const READ_EVERY_S = 1; // a peer the frames do not list: its REST entry, once a second
const HISTORY_MIN_EVERY_S = 5;
const HISTORY_MAX_EVERY_S = 60;

function lossKey() {
  return el("div", { className: "loss-key" }, el("span", { className: "label" }, "loss marks:"),
            ...LOSS_CLASSES.map((c) => {
              const swatch = el("span", { className: "swatch" });
              swatch.style.backgroundColor = c.color; // CSSOM: allowed by the page's CSP
              return el("span", { className: "loss-class" }, swatch, c.label);
            }));
}

export class PeerDetail {
  constructor(parent, api, clock, onError) {
    this.api = api;
    this.onError = onError;
    this.id = null;
    this.title = el("h2", { id: "peer-title" });
    this.tag = el("span", { className: "tag", hidden: true }, "simulated");
    this.summary = el("p", { id: "peer-summary" });
    this.path = el("p", { id: "peer-path", hidden: true });
    const close = el("button", { type: "button", id: "peer-close" }, "close");
    close.addEventListener("click", () => this.close());
    const charts = el("div", { className: "charts" });
    this.node = el("section", { id: "peer-detail", hidden: true },
                   el("div", { className: "toolbar" }, this.title, this.tag, close),
                   this.summary, this.path, charts);
    parent.append(this.node);
    this.latency = new TimeChart(charts, {
      clock, title: "Latency (p50–p95, loss marks)", unit: "ms", format: ms,
      series: [{ label: "p50", color: COLORS.blue, width: 2 },
               { label: "p95", color: "rgba(59,130,246,0.5)", width: 1 },
               { label: "loss", color: COLORS.red, scale: "loss", width: 0,
                 format: (v) => fixed(v, 1, " %") }],
      extraAxes: [{ scale: "loss", range: () => [0, 100], show: false }],
      bands: [{ series: [2, 1], fill: "rgba(59,130,246,0.2)" }],
      lossMarks: { series: 3, step: () => this.range.bandStep },
    });
    this.latency.node.append(lossKey());
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
    this.charts = [this.latency, this.jitter, this.quality];
    this.reset();
  }

  reset() {
    this.past = null; // readBuckets' columns: the complete buckets last read
    this.pastEnd = -Infinity; // where the complete buckets end (server time)
    this.live = []; // [{time, latencyMs, jitterMs, quality, mos}] since pastEnd
    this.shownAt = -Infinity; // the time of the figures shown
    this.lastRead = -Infinity;
    this.lastPast = -Infinity;
    this.reading = false;
    this.readingPast = false;
  }

  open(id, range) {
    this.id = id;
    this.range = range;
    this.reset();
    for (const chart of this.charts) chart.clear();
    setText(this.title, `Peer ${id}`);
    this.tag.hidden = true;
    this.summary.replaceChildren();
    this.path.hidden = true;
    this.node.hidden = false;
    this.node.scrollIntoView({ block: "nearest" });
  }

  close() {
    this.id = null;
    this.node.hidden = true;
  }

  setRange(range) {
    this.range = range;
    this.past = null; // buckets of the old step: read again
    this.lastPast = -Infinity;
  }

  // Called every frame (`now`: the frame's time; `frame`: the frame) and when the peer is
  // opened (the server's clock, no frame). Reads REST at its own pace, by the server's time.
  async refresh(now, frame = null) {
    const id = this.id;
    if (id === null) return;
    const listed = frame === null ? undefined : frame.peers.find((peer) => peer.id === id);
    if (listed !== undefined) this.showPeer(listed, now);
    else if (now - this.lastRead >= READ_EVERY_S && !this.reading) {
      this.lastRead = now;
      this.reading = true;
      await this.attempt(async () => this.showPeer(readPeer(await this.api.peer(id)), now));
      this.reading = false;
    }
    const every = Math.min(HISTORY_MAX_EVERY_S,
                           Math.max(HISTORY_MIN_EVERY_S, this.range.bandStep));
    if (now - this.lastPast >= every && !this.readingPast && id === this.id) {
      this.lastPast = now;
      this.readingPast = true;
      await this.attempt(() => this.readPast(id, now));
      this.readingPast = false;
    }
    if (id === this.id) this.drawAll(now);
  }

  async attempt(read) {
    try {
      await read();
    } catch (error) {
      this.onError(error);
    }
  }

  async readPast(id, now) {
    const { seconds, bandStep: step } = this.range;
    const history = await this.api.peerLatency(id, seconds, step);
    if (id !== this.id || step !== this.range.bandStep) return; // closed or re-ranged since
    // The bucket `now` falls in is still filling: the live points show it until it is done.
    const end = Math.floor(now / step) * step;
    const done = (history.buckets || []).filter((bucket) => bucket.timestamp < end);
    this.past = readBuckets({ buckets: done }, step, end);
    this.pastEnd = end;
    this.live = this.live.filter((point) => point.time >= end);
  }

  showPeer(peer, now) {
    // A REST read that comes back after a newer frame is older news: dropped.
    if (peer.id !== this.id || now <= this.shownAt) return;
    this.shownAt = now;
    setText(this.title, peer.name ? `${peer.name} (${peer.id})` : peer.id);
    this.tag.hidden = !peer.simulated;
    const figures = [
      `latency ${ms(peer.latencyMs)}`
        + (peer.latencyMs === null && peer.lastMeasuredAt !== null
          ? ` (last reply ${ago(peer.lastMeasuredAt, now)})` : ""),
      `jitter ${ms(peer.jitterMs)}`,
      `loss ${fixed(peer.lossPercent, 1, " %")}`,
      `MOS ${fixed(peer.mos, 2)}`,
    ].join(" · ");
    this.summary.replaceChildren(
      el("span", { className: `badge status-${peer.status}` }, peer.status), " · ",
      el("span", { id: "peer-reason", className: `reason-${peer.reasonKind}` },
         peer.statusText), " · ", figures, " · quality ",
      el("span", { className: bandClass(peer.band) },
         scoreText(peer.quality, peer.grade, peer.band)));
    this.showPath(peer.path, now);
    this.live.push({ time: now, latencyMs: peer.latencyMs, jitterMs: peer.jitterMs,
                     quality: peer.quality, mos: peer.mos });
    const oldest = now - this.range.seconds;
    while (this.live.length && this.live[0].time < oldest) this.live.shift();
  }

  // Which way packets are lost and how long each way takes: the first question after "is
  // it lossy". One-way delays say when they carry the two clocks' offset.
  showPath(path, now) {
    this.path.hidden = path === null;
    if (path === null) return;
    const clock = path.synchronized ? "" : " (offset-affected)";
    const way = (percent, delayMs) => (percent === null ? "" : `loss ${fixed(percent, 1, " %")}, `)
      + `delay ${ms(delayMs)}${clock}`;
    const parts = [`out: ${way(path.forwardLossPercent, path.forwardDelayMs)}`,
                   `back: ${way(path.returnLossPercent, path.returnDelayMs)}`];
    if (path.forwardLossPercent === null) {
      parts.push("loss by direction unknown (stateless reflector, or too few replies yet)");
    }
    if (path.ttl !== null) {
      parts.push(`TTL at reflector ${path.ttl}` + (path.lastChange === null ? ""
        : ` (path changed ${ago(path.lastChange, now)}, was ${path.previousTtl})`));
    }
    this.path.replaceChildren("path · ", parts.join(" · "));
  }

  // The past's buckets, then the live points: undefined where a series has no point (the
  // live points have no p95 or loss of their own), null where nothing came back.
  drawAll(now) {
    const past = this.past ?? readBuckets({ buckets: [] }, this.range.bandStep);
    const live = this.live.filter((point) => point.time >= this.pastEnd);
    const times = [...past.times, ...live.map((p) => p.time)];
    const none = live.map(() => undefined);
    this.latency.replace(times, [[...past.p50, ...live.map((p) => p.latencyMs)],
                                 [...past.p95, ...none], [...past.lossPercent, ...none]]);
    this.jitter.replace(times, [[...past.jitterMs, ...live.map((p) => p.jitterMs)]]);
    this.quality.replace(times, [[...past.score, ...live.map((p) => p.quality)],
                                 [...past.mos, ...live.map((p) => p.mos)]]);
    for (const chart of this.charts) chart.draw(now, this.range.seconds);
  }
}
