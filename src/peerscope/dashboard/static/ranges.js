// The time ranges the charts can show, and the buttons that pick one.

import { el } from "./dom.js";

// live: the range is short enough for the charts to take one point per frame (at most an
// hour of 1 s frames); longer ranges show `step`-second means, re-read every minute. 7 d at
// an hour a point (168 points) reads the store's 1-hour tier; at 600 s it would merge 10,080
// minute buckets per figure, five times the 50 ms a range may take (docs/BENCHMARKS.md).
// bandStep: seconds per bucket of a peer's latency band.
export const RANGES = [
  { label: "5 min", seconds: 300, step: null, live: true, bandStep: 5 },
  { label: "1 h", seconds: 3600, step: null, live: true, bandStep: 60 },
  { label: "24 h", seconds: 86400, step: 60, live: false, bandStep: 900 },
  { label: "7 d", seconds: 604800, step: 3600, live: false, bandStep: 3600 },
];

export function rangePicker(parent, onPick) {
  const buttons = RANGES.map((range) => {
    const button = el("button", { type: "button", className: "range" }, range.label);
    button.addEventListener("click", () => pick(range));
    return button;
  });
  function pick(range) {
    buttons.forEach((button, i) => button.classList.toggle("active", RANGES[i] === range));
    onPick(range);
  }
  parent.append(el("span", { className: "label" }, "Range"), ...buttons);
  return pick;
}
