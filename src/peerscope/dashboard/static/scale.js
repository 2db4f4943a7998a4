// How the page shows a judgement: the one quality scale (a band word and its letter, always
// the same pair, from the server) and the loss classes of the charts' loss marks.

import { fixed } from "./format.js";

const BANDS = ["excellent", "good", "fair", "poor", "bad"];

// The class that colours a band (the same colours wherever a score is shown).
export function bandClass(band) {
  return `band-${BANDS.includes(band) ? band : "none"}`;
}

// "83 B good"; "–" before the first measurement.
export function scoreText(score, grade, band) {
  if (score === null || score === undefined) return "–";
  return `${fixed(score, 0)} ${grade ?? ""} ${band ?? ""}`.trim();
}

// Loss per bucket in SmokePing's manner: a colour per class, blue to red as it grows. An
// outage (everything sent in the bucket lost) has its own. `below`: the class's upper bound.
export const LOSS_CLASSES = [
  { below: 5, label: "< 5 %", color: "#38bdf8" },
  { below: 20, label: "< 20 %", color: "#2563eb" },
  { below: 50, label: "< 50 %", color: "#7c3aed" },
  { below: 100, label: "≥ 50 %", color: "#db2777" },
  { below: Infinity, label: "outage", color: "#dc2626" },
];

// The class of a bucket's loss %, or null for none (no mark).
export function lossClass(percent) {
  if (percent === null || percent === undefined || !(percent > 0)) return null;
  return LOSS_CLASSES.find((c) => percent < c.below);
}
