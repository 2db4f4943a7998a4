// The profiler panel: the names peerscope.profiler times in the server (calls, errors, avg,
// p95, p99, max, total, CPU; by total time, the slow ones marked) and the server's process,
// read every few seconds while the page is visible, one read at a time; the switch and the
// reset (PUT), showing the state the server answers; and the pyinstrument sample of the
// server's loop (profiler_sample.js). Every failure shows in the panel, in words.

import { failureText, Unauthorized } from "./api.js";
import { el, setText } from "./dom.js";
import { bytes, fineMs, fixed, percent } from "./format.js";
import { ProfilerSample } from "./profiler_sample.js";
import { readProfilerState } from "./stream.js";

const READ_EVERY_MS = 3000;
// What PUT answers with: asking GET for the same keeps the two answers alike.
const TOP = 10;
const SLOW_MS = 10;
const SHOWN = 100; // names drawn; any beyond are counted, not drawn
const HEADINGS = ["Name", "Calls", "Errors", "Avg", "p95", "p99", "Max", "Total", "CPU"];

function processText(process) {
  return `process: CPU ${percent(process.cpuPercent)}, RSS ${bytes(process.rssBytes)}, `
    + `${process.threads} threads, `
    + `${process.openFds === null ? "–" : process.openFds} open fds`;
}

function changeText(change) {
  if (change.reset) return "Could not reset the profiler";
  return `Could not switch the profiler ${change.enabled ? "on" : "off"}`;
}

export class ProfilerPanel {
  // api: api.js's Api; onUnauthorized(error): a 401 (the page asks for the token).
  constructor(parent, { api, onUnauthorized }) {
    this.api = api;
    this.onUnauthorized = onUnauthorized;
    this.reading = false;
    this.readAgain = false;
    this.timer = null;
    this.serverUp = true;
    this.changes = 0; // PUTs sent and answered: a read begun before the last is older news
    this.serverEnabled = null; // as the server last said (null: not known yet)
    this.errors = { read: "", write: "" };

    this.enabled = el("input", { type: "checkbox", id: "profiler-enabled", disabled: true });
    this.enabled.addEventListener("change", () => this.change({ enabled: this.enabled.checked }));
    this.stateText = el("span", { id: "profiler-state" }, "–");
    this.resetButton = el("button", { type: "button", id: "profiler-reset",
                                      title: "forget every figure recorded so far" }, "Reset");
    this.resetButton.addEventListener("click", () => this.change({ reset: true }));
    this.error = el("p", { id: "profiler-error", className: "error", role: "status",
                           hidden: true });
    this.process = el("p", { id: "profiler-process", className: "empty" }, "process: –");
    this.body = el("tbody");
    this.more = el("p", { id: "profiler-more", className: "empty", hidden: true });
    this.sample = new ProfilerSample({ api, onUnauthorized });
    parent.append(
      el("div", { className: "toolbar" },
         el("label", { htmlFor: "profiler-enabled" }, this.enabled, " Time profiled functions"),
         this.stateText, this.resetButton),
      this.error, this.process,
      el("table", { id: "profiler-names" },
         el("thead", {}, el("tr", {}, ...HEADINGS.map((label, i) =>
           el("th", { scope: "col", className: i ? "num" : "" }, label)))),
         this.body),
      this.more, this.sample.node);
    this.showNames([], null);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.refresh();
    });
  }

  // Whether the page can reach the server (its /ws is up, or answered that it wants a
  // token): reads pause while it cannot and resume, at once, when it can.
  setServerUp(up) {
    if (up === this.serverUp) return;
    this.serverUp = up;
    if (up) this.refresh();
  }

  // Reads the state now (or, while a read is under way, once more after it), then every
  // READ_EVERY_MS while the page is visible and the server up: the next read waits for the
  // answer to this one, so a slow server never has several at once.
  async refresh() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    if (document.hidden || !this.serverUp) return; // visibilitychange or setServerUp resumes
    this.reading = true;
    const changes = this.changes;
    try {
      const state = readProfilerState(await this.api.profiler(TOP, SLOW_MS));
      if (changes === this.changes) this.show(state);
      this.setError("read", "");
    } catch (error) {
      this.failed("read", "Could not read the profiler", error);
    }
    this.reading = false;
    if (this.readAgain) {
      this.readAgain = false;
      this.refresh();
    } else this.timer = setTimeout(() => this.refresh(), READ_EVERY_MS);
  }

  // PUT {enabled} or {reset}: the panel shows what the server answers, or, refused, goes
  // back to what it last said.
  async change(change) {
    this.changes += 1;
    this.setBusy(true);
    try {
      const state = readProfilerState(await this.api.switchProfiler(change));
      this.changes += 1;
      this.show(state);
      this.setError("write", "");
    } catch (error) {
      this.enabled.checked = this.serverEnabled === true;
      this.failed("write", changeText(change), error);
    } finally {
      this.setBusy(false);
    }
  }

  setBusy(busy) {
    this.enabled.disabled = busy || this.serverEnabled === null;
    this.resetButton.disabled = busy;
  }

  show(state) {
    this.serverEnabled = state.enabled;
    this.enabled.checked = state.enabled;
    this.enabled.disabled = false;
    setText(this.stateText, (state.enabled ? "on" : "off")
                            + (state.sampling ? ", a sample is running" : ""));
    this.stateText.className = state.enabled ? "state-on" : "state-off";
    setText(this.process, processText(state.process));
    this.showNames(state.names, state);
  }

  showNames(names, state) {
    const shown = names.slice(0, SHOWN);
    this.body.replaceChildren(...(shown.length ? shown.map((entry) => this.row(entry, state))
      : [el("tr", {}, el("td", { colSpan: HEADINGS.length, className: "empty" },
                         "Nothing profiled yet"))]));
    const more = names.length - shown.length;
    this.more.hidden = more <= 0;
    setText(this.more, more > 0 ? `… and ${more} more (GET /api/profiler lists all)` : "");
  }

  row(entry, state) {
    const slow = state.slow.has(entry.name);
    const classes = [slow ? "slow" : "", state.hotspots.has(entry.name) ? "hotspot" : ""];
    const cell = (key, text, title = "") => el("td", { className: `col-${key} num`, title },
                                               text);
    return el("tr", { className: classes.filter((c) => c).join(" "),
                      dataset: { name: entry.name } },
      el("td", { className: "col-name", title: `${entry.name} (${entry.kind})` },
         entry.name,
         slow ? el("span", { className: "tag slow",
                             title: `p95 over ${fixed(state.slowThresholdMs, 0)} ms` },
                   "slow") : null),
      cell("calls", String(entry.calls)),
      cell("errors", String(entry.errors)),
      cell("avg", fineMs(entry.avgMs)),
      cell("p95", fineMs(entry.p95Ms)),
      cell("p99", fineMs(entry.p99Ms)),
      cell("max", fineMs(entry.maxMs)),
      cell("total", fineMs(entry.totalMs)),
      cell("cpu", fineMs(entry.cpuMs),
           entry.cpuMs === null ? "CPU time not measured" : `over ${entry.cpuCalls} calls`));
  }

  failed(kind, what, error) {
    if (error instanceof Unauthorized) this.onUnauthorized(error);
    this.setError(kind, `${what}: ${failureText(error)}`);
  }

  // A read's failure and a change's each stay until the next read or change works.
  setError(kind, text) {
    this.errors[kind] = text;
    const shown = [this.errors.write, this.errors.read].filter((part) => part).join(" ");
    setText(this.error, shown);
    this.error.hidden = shown === "";
  }
}
