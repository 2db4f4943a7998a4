// The profiler panel's pyinstrument sample of the server's event loop: "Sample N s" lists
// where the loop's time went (function, file:line, share of the sample, its own time), and
// "Download HTML report" saves pyinstrument's page (the server sends it as an attachment, so
// the page fetches it and hands it to the browser as a file). A server takes one sample at a
// time: a 409 says another is running.

import { ApiError, failureText, Unauthorized } from "./api.js";
import { el, setText } from "./dom.js";
import { fixed, ms, percent } from "./format.js";
import { readProfilerSample } from "./stream.js";

const DEFAULT_S = 5;
const MIN_S = 1;
const MAX_S = 60; // the server's limit
// A download started from a blob: URL has taken its bytes well before this; the URL keeps
// the whole page in memory until revoked.
const KEEP_URL_MS = 60_000;

function save({ blob, filename }) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), KEEP_URL_MS);
}

export class ProfilerSample {
  // api: api.js's Api; onUnauthorized(error): a 401 (the page asks for the token).
  constructor({ api, onUnauthorized }) {
    this.api = api;
    this.onUnauthorized = onUnauthorized;
    this.seconds = el("input", { type: "number", id: "profiler-seconds", min: String(MIN_S),
                                 max: String(MAX_S), step: "1", value: String(DEFAULT_S),
                                 title: `seconds (${MIN_S} to ${MAX_S})` });
    this.sampleButton = el("button", { type: "button", id: "profiler-sample-button" },
                           "Sample");
    this.sampleButton.addEventListener("click", () => this.run("json"));
    this.reportButton = el("button", { type: "button", id: "profiler-report-button" },
                           "Download HTML report");
    this.reportButton.addEventListener("click", () => this.run("html"));
    this.status = el("span", { id: "profiler-sample-status", role: "status" });
    this.summary = el("p", { id: "profiler-sample-summary", className: "empty", hidden: true });
    this.body = el("tbody");
    this.table = el("table", { id: "profiler-sample", hidden: true },
      el("thead", {}, el("tr", {}, ...[["Function", ""], ["File", ""], ["Share", "num"],
                                       ["Own time", "num"]]
        .map(([label, className]) => el("th", { scope: "col", className }, label)))),
      this.body);
    this.node = el("div", { className: "profiler-sample" },
      el("h3", {}, "Where the server's event loop spends its time (pyinstrument)"),
      el("div", { className: "toolbar" }, this.sampleButton, this.seconds, el("span", {}, "s"),
         this.reportButton, this.status),
      this.summary, this.table);
  }

  // format: "json" (listed here) or "html" (saved as a file).
  async run(format) {
    const seconds = Number(this.seconds.value);
    if (!(this.seconds.value !== "" && seconds >= MIN_S && seconds <= MAX_S)) {
      this.showStatus(`seconds: must be a number from ${MIN_S} to ${MAX_S}`, true);
      return;
    }
    this.setRunning(true);
    this.showStatus("sampling…");
    try {
      if (format === "html") {
        const file = await this.api.profilerReport(seconds);
        save(file);
        this.showStatus(`saved ${file.filename}`);
      } else {
        this.show(readProfilerSample(await this.api.profilerSample(seconds)));
        this.showStatus("");
      }
    } catch (error) {
      if (error instanceof Unauthorized) this.onUnauthorized(error);
      this.showStatus(error instanceof ApiError && error.status === 409
        ? "a sample is already running" : `Could not sample: ${failureText(error)}`, true);
    } finally {
      this.setRunning(false);
    }
  }

  setRunning(running) {
    this.sampleButton.disabled = running;
    this.reportButton.disabled = running;
    this.seconds.disabled = running;
  }

  showStatus(text, failed = false) {
    setText(this.status, text);
    this.status.className = failed ? "error" : "empty";
  }

  show(sample) {
    setText(this.summary, `${fixed(sample.durationS, 2, " s")} sampled: `
      + `${sample.sampleCount} stacks, CPU ${fixed(sample.cpuTimeS, 2, " s")}`);
    this.summary.hidden = false;
    this.table.hidden = false;
    if (!sample.top.length) {
      this.body.replaceChildren(el("tr", {}, el("td", { colSpan: 4, className: "empty" },
                                                "Nothing ran on the loop")));
      return;
    }
    this.body.replaceChildren(...sample.top.map((entry) => el("tr", {},
      el("td", { className: "col-function" }, entry.function),
      el("td", { className: "col-file", title: entry.file }, `${entry.file}:${entry.line}`),
      el("td", { className: "col-share num" }, percent(entry.share * 100)),
      el("td", { className: "col-self num" }, ms(entry.selfS * 1000)))));
  }
}
