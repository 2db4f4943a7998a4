// Time-series charts (uPlot): a fixed window of columns, filled from REST history and then
// one point per frame, with the cursor synchronised across every chart on the page. Times
// are the server's: the x axis ends at the `now` each draw is given.
//
// In a column, null means "measured, nothing came back": the line breaks there (a gap, never
// a line drawn across an outage). undefined means "this series has no point at this time"
// (a chart mixing per-bucket and per-frame points): the line runs on past it. The legend
// shows each series' latest value while the cursor is off the chart, its value under the
// cursor otherwise.

import uPlot from "./vendor/uPlot.esm.js";
import { el } from "./dom.js";
import { lossClass } from "./scale.js";

const SYNC_KEY = "peerscope";
export const COLORS = {
  blue: "#3b82f6", green: "#16a34a", orange: "#ea580c", purple: "#9333ea",
  red: "#dc2626", grey: "#64748b",
};

function yAxis(unit, format, scale, side, show = true) {
  return {
    show, scale, side, label: unit, size: 76, labelSize: 18,
    values: (u, splits) => splits.map((v) => (v === null ? "" : format(v))),
    grid: { show: side === 3 },
  };
}

const legendTime = uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}");

// The newest value of a column that is not undefined (null included: a gap is the news).
function latest(column) {
  for (let i = column.length - 1; i >= 0; i--) {
    if (column[i] !== undefined) return column[i];
  }
  return null;
}

export class TimeChart {
  // clock: the page's ServerClock; series: [{label, color, scale?, points?, width?}]; unit
  // and format label the left axis; extraAxes: [{scale, unit, format, range, show?}] on the
  // right (show: false sets only the scale's range); bands: uPlot bands (series indices);
  // lossMarks: {series, step()}: that series holds a loss % per bucket of step() seconds,
  // marked across its bucket in the colour of its class (scale.js), the whole height
  // shaded for an outage.
  constructor(parent, { clock, title, unit, format, series, capacity = 3600, height = 170,
                        extraAxes = [], bands = [], lossMarks = null }) {
    this.capacity = capacity;
    this.span = 300; // seconds shown, up to now
    this.now = clock.now(); // until the first draw
    this.columns = [[], ...series.map(() => [])];
    this.lossMarks = lossMarks;
    this.marks = []; // the loss marks last drawn: [{time, percent, label}]
    this.node = el("div", { className: "chart" });
    parent.append(this.node);
    const opts = {
      title,
      width: Math.max(200, parent.clientWidth || 400),
      height,
      cursor: { sync: { key: SYNC_KEY } },
      legend: { live: true },
      scales: {
        x: { time: true, range: () => [this.now - this.span, this.now] },
        // From 0 (or below), and to 1 while every value is 0 (a flat jitter of 0 ms).
        y: { range: (u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max : 1] },
      },
      axes: [
        { label: "local time", labelSize: 16 },
        yAxis(unit, format, "y", 3),
        ...extraAxes.map((axis) => yAxis(axis.unit, axis.format, axis.scale, 1, axis.show)),
      ],
      series: [
        { value: (u, v, i, idx) => (idx === null ? "latest"
          : legendTime(new Date(v * 1000))) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          scale: s.scale ?? "y",
          spanGaps: false,
          points: s.points ?? { show: false },
          fill: s.fill,
          value: (u, v, i, idx) => {
            const shown = idx === null ? latest(u.data[i]) : v;
            return shown === null || shown === undefined ? "–" : (s.format || format)(shown);
          },
        })),
      ],
      bands,
      hooks: lossMarks === null ? {} : { draw: [(u) => this.drawLossMarks(u)] },
    };
    for (const axis of extraAxes) opts.scales[axis.scale] = { range: axis.range };
    this.plot = new uPlot(opts, this.columns, this.node);
    // The chart follows its column's width (panels resize with the window).
    this._resize = new ResizeObserver(() => {
      const width = this.node.clientWidth;
      if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height });
    });
    this._resize.observe(this.node);
  }

  // Replace everything with history: times and one array of values per series.
  replace(times, valueColumns) {
    this.columns = [times.slice(), ...valueColumns.map((values) => values.slice())];
  }

  clear() {
    this.columns = this.columns.map(() => []);
  }

  append(time, values) {
    const last = this.columns[0].length - 1;
    if (last >= 0 && time <= this.columns[0][last]) return; // history already holds it
    this.columns[0].push(time);
    values.forEach((value, i) => this.columns[i + 1].push(value));
    const excess = this.columns[0].length - this.capacity;
    if (excess > 0) for (const column of this.columns) column.splice(0, excess);
  }

  drawLossMarks(u) {
    const { series, step } = this.lossMarks;
    const seconds = step();
    const { ctx, bbox } = u;
    const times = u.data[0];
    const values = u.data[series];
    const strip = Math.max(3, Math.round(bbox.height / 24));
    this.marks = [];
    ctx.save();
    ctx.beginPath();
    ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
    ctx.clip();
    for (let i = 0; i < times.length; i++) {
      const found = lossClass(values[i]);
      if (found === null) continue;
      const x0 = u.valToPos(times[i], "x", true);
      const x1 = Math.max(x0 + 2, u.valToPos(times[i] + seconds, "x", true));
      if (x1 < bbox.left || x0 > bbox.left + bbox.width) continue;
      ctx.fillStyle = found.color;
      if (found.below === Infinity) { // an outage: nothing came back, the whole bucket
        ctx.globalAlpha = 0.15;
        ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
      }
      ctx.globalAlpha = 1;
      ctx.fillRect(x0, bbox.top, x1 - x0, strip);
      this.marks.push({ time: times[i], percent: values[i], label: found.label });
    }
    ctx.restore();
  }

  draw(now, span = this.span) {
    this.now = now;
    this.span = span;
    this.plot.setData(this.columns);
  }

  get points() {
    return this.columns[0].length;
  }
}
