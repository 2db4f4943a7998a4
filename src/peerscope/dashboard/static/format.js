// Figures as the dashboard prints them, each with its unit; a missing figure is an en dash,
// never a made-up 0.

const DASH = "–";

function missing(value) {
  return value === null || value === undefined || Number.isNaN(value);
}

export function fixed(value, digits = 1, unit = "") {
  return missing(value) ? DASH : `${value.toFixed(digits)}${unit}`;
}

export function ms(value) {
  if (missing(value)) return DASH;
  return value < 10 ? fixed(value, 2, " ms") : fixed(value, 1, " ms");
}

export function percent(value) {
  return fixed(value, 1, " %");
}

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB"];

// Decimal units (1 KB = 1000 B), as network rates are usually quoted.
export function bytes(value, suffix = "") {
  if (missing(value)) return DASH;
  let scaled = value;
  let unit = 0;
  while (Math.abs(scaled) >= 1000 && unit < BYTE_UNITS.length - 1) {
    scaled /= 1000;
    unit += 1;
  }
  return `${scaled.toFixed(unit === 0 ? 0 : 1)} ${BYTE_UNITS[unit]}${suffix}`;
}

export function rate(value) {
  return bytes(value, "/s");
}

export function duration(seconds) {
  if (missing(seconds)) return DASH;
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days) return `${days} d ${hours} h`;
  if (hours) return `${hours} h ${minutes} min`;
  if (minutes) return `${minutes} min ${s % 60} s`;
  return `${s} s`;
}

// How long ago an epoch-seconds time was, against `now` (epoch seconds).
export function ago(time, now) {
  return missing(time) ? DASH : `${duration(now - time)} ago`;
}

// A duration that may be a few microseconds (a profiled function's call): three decimals
// below 1 ms, where ms() would print 0.00.
export function fineMs(value) {
  return !missing(value) && value < 1 ? fixed(value, 3, " ms") : ms(value);
}
