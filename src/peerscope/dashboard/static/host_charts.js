// The host and server charts: CPU and memory, network rates, messages per second.
// History comes from REST for the chosen range; live ranges then take one point per frame.

import { COLORS, TimeChart } from "./charts.js";
import { fixed, rate } from "./format.js";
import { readPoints } from "./stream.js";

export class HostCharts {
  constructor(parent, clock) {
    this.resources = new TimeChart(parent, {
      clock, title: "CPU and memory", unit: "%", format: (v) => fixed(v, 0, " %"),
      series: [{ label: "CPU", color: COLORS.blue }, { label: "memory", color: COLORS.purple }],
    });
    this.network = new TimeChart(parent, {
      clock, title: "Network", unit: "bytes/s", format: rate,
      series: [{ label: "send", color: COLORS.orange },
               { label: "receive", color: COLORS.green }],
    });
    // No REST history holds the message rate: this chart starts when the page opens.
    this.messages = new TimeChart(parent, {
      clock, title: "Messages", unit: "msg/s", format: (v) => fixed(v, 1, " /s"),
      series: [{ label: "messages", color: COLORS.grey }],
    });
    this.charts = [this.resources, this.network, this.messages];
  }

  // history: /api/metrics/system/history's answer (from memory, or for a range memory
  // no longer holds from the history store).
  showHistory(history) {
    const { data, step } = history;
    const cpu = readPoints(data.cpu, step);
    const memory = readPoints(data.memory, step);
    const sent = readPoints(data.network_sent, step);
    const received = readPoints(data.network_received, step);
    this.resources.replace(cpu.times, [cpu.values, memory.values]);
    this.network.replace(sent.times, [sent.values, received.values]);
  }

  showFrame(frame, range) {
    const { system, server } = frame;
    if (range.live) {
      this.resources.append(frame.time, [system.cpuPercent, system.memoryPercent]);
      this.network.append(frame.time, [system.sentBytesPerS, system.recvBytesPerS]);
    }
    this.messages.append(frame.time, [server.messagesPerS]);
    for (const chart of this.charts) chart.draw(frame.time, range.seconds);
  }
}
