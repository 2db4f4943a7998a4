// Time on the page. The browser's wall clock can be minutes off the server's (a machine
// without NTP, a laptop back from sleep, a restored VM), so every date the page shows, charts
// or asks for is the server's: `ServerClock` keeps the offset between the two clocks. Pacing
// ("re-read every 10 s") is a duration, not a date: `monotonicS` reads the browser's
// monotonic clock, which setting either wall clock does not move.

export class ServerClock {
  constructor() {
    this.offset = 0; // seconds, server − browser: none known until the first frame
  }

  // A server time (epoch seconds) that has just arrived: each metrics frame's `timestamp`.
  // It was stamped before the frame left the server, so the offset errs low by the frame's
  // way here (milliseconds, against the page's resolution of a second); taken again at every
  // frame, it follows either clock being set.
  observe(serverTime) {
    this.offset = serverTime - Date.now() / 1000;
  }

  // The server's clock now, in epoch seconds.
  now() {
    return Date.now() / 1000 + this.offset;
  }
}

export function monotonicS() {
  return performance.now() / 1000;
}
