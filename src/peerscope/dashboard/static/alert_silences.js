// The silences in force, each with an Unsilence action, and the adding of one. Read when the
// page connects, after each change made here, and every 30 s (another page or the API may
// add some); one whose end has passed by the server's clock goes at once.

import { failureText, isNotFound } from "./api.js";
import { monotonicS } from "./clock.js";
import { el } from "./dom.js";
import { readSilence } from "./stream.js";

const READ_EVERY_S = 30;

function matchersText(matchers) {
  return Object.entries(matchers).map(([name, value]) => `${name}=${value}`).join(", ");
}

export class SilencesList {
  // onReadFailure(error): a read failed (a 404: the server has no alerting); onWrite(text):
  // what became of an addition or removal, "" when it worked.
  constructor({ api, onReadFailure, onWrite }) {
    this.api = api;
    this.onReadFailure = onReadFailure;
    this.onWrite = onWrite;
    this.entries = []; // readSilence's, soonest end first
    this.shownKey = null;
    this.readAt = -Infinity; // monotonicS() of the last read
    this.reads = 0; // reads begun
    this.node = el("ul", { id: "alerts-silences", className: "alerts" });
    this.show([]);
  }

  // A read is under way (the panel's catch-up): no other for a while.
  reading() {
    this.readAt = monotonicS();
  }

  // Each frame: drop what ended, read again when due.
  tick(now) {
    if (this.entries.length && this.entries[0].endsAt <= now) {
      this.show(this.entries.filter((silence) => silence.endsAt > now));
    }
    if (monotonicS() - this.readAt >= READ_EVERY_S) this.load();
  }

  async load() {
    this.reading();
    const read = ++this.reads;
    try {
      const { silences } = await this.api.silences();
      // An answer overtaken by a later read's (after a change made here) is older news.
      if (read === this.reads) this.show(silences.map(readSilence));
    } catch (error) {
      this.onReadFailure(error);
    }
  }

  // Silence alerts whose labels hold `matchers` for `seconds`.
  async add(matchers, seconds) {
    try {
      await this.api.silence(matchers, seconds);
    } catch (error) {
      if (isNotFound(error)) this.onReadFailure(error);
      else this.onWrite(`Could not silence ${matchersText(matchers)}: ${failureText(error)}`);
      return;
    }
    this.onWrite("");
    await this.load();
  }

  async remove(silence, button) {
    button.disabled = true;
    try {
      await this.api.unsilence(silence.id);
    } catch (error) {
      // A 404: it ended or was removed meanwhile; the read below shows what is in force.
      if (!isNotFound(error)) {
        this.onWrite(`Could not unsilence ${matchersText(silence.matchers)}: `
                     + failureText(error));
        button.disabled = false;
        return;
      }
    }
    this.onWrite("");
    await this.load();
  }

  show(entries) {
    const sorted = [...entries].sort((a, b) => a.endsAt - b.endsAt);
    const key = sorted.map((silence) => `${silence.id}@${silence.endsAt}`).join(" ");
    if (key === this.shownKey) return;
    this.shownKey = key;
    this.entries = sorted;
    if (!sorted.length) {
      this.node.replaceChildren(el("li", { className: "empty" }, "No silences"));
      return;
    }
    this.node.replaceChildren(...sorted.map((silence) => {
      const button = el("button", { type: "button", className: "unsilence" }, "Unsilence");
      button.addEventListener("click", () => this.remove(silence, button));
      const who = [silence.createdBy, silence.comment].filter((part) => part).join(": ");
      return el("li", { className: "silence", dataset: { id: silence.id } },
                el("span", { className: "matchers" }, matchersText(silence.matchers)),
                el("span", { className: "until" },
                   `until ${new Date(silence.endsAt * 1000).toLocaleString()}`),
                who ? el("span", { className: "note" }, who) : null,
                el("span", { className: "actions" }, button));
    }));
  }
}
