// The API token: asked of the user when the server wants one, kept for this tab only
// (sessionStorage), sent as a bearer header on REST and as ?token= on /ws.

import { el } from "./dom.js";

const KEY = "peerscope.token";

export function storedToken() {
  return sessionStorage.getItem(KEY);
}

export class TokenPrompt {
  constructor(parent, onToken) {
    this.input = el("input", { type: "password", id: "token-input", autocomplete: "off",
                               placeholder: "token" });
    this.note = el("p", { className: "note" });
    const form = el("form", { id: "token-form" },
      el("label", { htmlFor: "token-input" }, "This server wants its API token"),
      this.input, el("button", { type: "submit" }, "Connect"), this.note);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = this.input.value.trim();
      if (!token) return;
      sessionStorage.setItem(KEY, token);
      this.node.hidden = true;
      onToken(token);
    });
    this.node = el("div", { id: "token-prompt", className: "overlay", hidden: true }, form);
    parent.append(this.node);
  }

  show() {
    this.note.textContent = storedToken()
      ? "The token given was refused: check it and try again." : "";
    this.node.hidden = false;
    this.input.focus();
  }
}
