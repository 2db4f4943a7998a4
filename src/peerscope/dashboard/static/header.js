// The header: the network's score, grade and band, peers by status, the host, the server's
// event-loop lag, uptime, and the banner shown while the connection to the server is down.

import { el, setText } from "./dom.js";
import { duration, fixed, ms, percent } from "./format.js";
import { bandClass, scoreText } from "./scale.js";

function figure(label) {
  const value = el("span", { className: "value" }, "–");
  const node = el("div", { className: "figure" }, el("span", { className: "label" }, label),
                  value);
  return { node, value };
}

export class Header {
  constructor(parent) {
    this.figures = {
      score: figure("Network score"), connected: figure("Connected"),
      degraded: figure("Degraded"), disconnected: figure("Disconnected"),
      cpu: figure("Host CPU"), memory: figure("Memory"), lag: figure("Loop lag"),
      uptime: figure("Uptime"),
      fps: figure("Dashboard fps"),
    };
    this.figures.connected.node.classList.add("status-connected");
    this.figures.degraded.node.classList.add("status-degraded");
    this.figures.disconnected.node.classList.add("status-disconnected");
    this.banner = el("div", { id: "disconnected-banner", className: "banner", hidden: true });
    parent.append(el("div", { className: "figures" },
                     ...Object.values(this.figures).map((f) => f.node)), this.banner);
  }

  showFrame(frame) {
    const { network, system, server } = frame;
    const f = this.figures;
    setText(f.score.value, scoreText(network.score, network.grade, network.band));
    f.score.value.className = `value ${bandClass(network.band)}`;
    setText(f.connected.value, String(network.byStatus.connected ?? 0));
    setText(f.degraded.value, String(network.byStatus.degraded ?? 0));
    setText(f.disconnected.value, String(network.byStatus.disconnected ?? 0));
    setText(f.cpu.value, percent(system.cpuPercent));
    setText(f.memory.value, `${percent(system.memoryPercent)} of ${fixed(
      system.memoryTotalMb / 1024, 1, " GB")}`);
    // How late the server's loop ran a timer: the worst since the last frame, and the p99
    // of the last minute (a loop that stalls now and then shows there).
    setText(f.lag.value, server.loopLagMs === null ? "–"
      : `${ms(server.loopLagMs)} (p99 ${ms(server.loopLagP99Ms)})`);
    f.lag.value.title = "How late a short timer (loop_lag_interval_s) fired on the server's loop";
  }

  showFps(fps) {
    setText(this.figures.fps.value, fixed(fps, 0));
  }

  showConnection({ connected, retryInMs, tokenRefused }) {
    this.banner.hidden = connected;
    if (connected) return;
    setText(this.banner, tokenRefused
      ? "Disconnected from server: it wants a token."
      : `Disconnected from server: reconnecting in ${Math.ceil(retryInMs / 1000)} s…`);
  }
}
