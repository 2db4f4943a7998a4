// Time-series charts (uPlot): a fixed window of columns, filled from REST history and then
// one point per frame, with the cursor synchronised across every chart on the page. Times
// are the server's: the x axis ends at the `now` each draw is given.

import uPlot from "./vendor/uPlot.esm.js";
import { el } from "./dom.js";

const SYNC_KEY = "peerscope";
export const COLORS = {
  blue: "#3b82f6", green: "#16a34a", orange: "#ea580c", purple: "#9333ea",
  red: "#dc2626", grey: "#64748b",
};

function yAxis(unit, format, scale, side) {
  return {
    scale, side, label: unit, size: 76, labelSize: 18,
    values: (u, splits) => splits.map((v) => (v === null ? "" : format(v))),
    grid: { show: side === 3 },
  };
}

export class TimeChart {
  // clock: the page's ServerClock; series: [{label, color, scale?, points?, width?}]; unit
  // and format label the left axis; extraAxes: [{scale, unit, format}] on the right; bands:
  // uPlot bands (series indices).
  constructor(parent, { clock, title, unit, format, series, capacity = 3600, height = 170,
                        extraAxes = [], bands = [] }) {
    this.capacity = capacity;
    this.span = 300; // seconds shown, up to now
    this.now = clock.now(); // until the first draw
    this.columns = [[], ...series.map(() => [])];
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
        y: { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, 1e-9)] },
      },
      axes: [
        { label: "local time", labelSize: 16 },
        yAxis(unit, format, "y", 3),
        ...extraAxes.map((axis) => yAxis(axis.unit, axis.format, axis.scale, 1)),
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          scale: s.scale ?? "y",
          points: s.points ?? { show: false },
          fill: s.fill,
          value: (u, v) => (v === null || v === undefined ? "–" : (s.format || format)(v)),
        })),
      ],
      bands,
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

  draw(now, span = this.span) {
    this.now = now;
    this.span = span;
    this.plot.setData(this.columns);
  }

  get points() {
    return this.columns[0].length;
  }
}
