// peerscope's browser client, for any page that talks to a peerscope server (a game, the
// dashboard): it counts the page's frames and keeps a /ws connection that answers the
// server's RTT pings and reports the page's fps, so the server measures this page as a peer.
//
//   import { FPSCounter, PeerscopeClient } from "/static/peerscope.js";
//   const fps = new FPSCounter().run();          // or call fps.recordFrame() in your loop
//   new PeerscopeClient({ name: "player-7", fps, onMessage: (m) => {} }).connect();

export class FPSCounter {
  // fps and frame time over the last `windowFrames` frames (the avatar seed's 60).
  constructor(windowFrames = 60) {
    this.fps = 0;
    this.frameTime = 0; // ms
    this._times = new Float64Array(windowFrames + 1);
    this._count = 0;
    this._next = 0;
    this._handle = null;
  }

  recordFrame(now = performance.now()) {
    const size = this._times.length;
    this._times[this._next] = now;
    this._next = (this._next + 1) % size;
    this._count = Math.min(this._count + 1, size);
    if (this._count < 2) return;
    const oldest = this._times[this._count < size ? 0 : this._next];
    const frames = this._count - 1;
    const span = now - oldest;
    this.frameTime = span / frames;
    this.fps = span > 0 ? (1000 * frames) / span : 0;
  }

  getFPS() {
    return this.fps;
  }

  // Count this page's own animation frames (for pages without a render loop of their own).
  run() {
    const frame = (now) => {
      this.recordFrame(now);
      this._handle = requestAnimationFrame(frame);
    };
    this._handle = requestAnimationFrame(frame);
    return this;
  }

  stop() {
    if (this._handle !== null) cancelAnimationFrame(this._handle);
    this._handle = null;
  }
}

// The reason the server gives when it closes /ws for a missing or wrong token (code 1008).
export const TOKEN_REFUSED = "missing or wrong token";
const POLICY_VIOLATION = 1008;

export function defaultSocketUrl() {
  const url = new URL("ws", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export class PeerscopeClient {
  // onMessage(message): every parsed message but the server's pings (answered here);
  // onState({connected, retryInMs, tokenRefused}): the connection came up or went down.
  constructor({ url = defaultSocketUrl(), name = null, token = null, fps = null,
                onMessage = () => {}, onState = () => {}, reportEveryMs = 1000,
                firstRetryMs = 500, maxRetryMs = 30000 } = {}) {
    Object.assign(this, { url, name, token, fps, onMessage, onState, reportEveryMs,
                          firstRetryMs, maxRetryMs });
    this._socket = null;
    this._failures = 0;
    this._retry = null;
    this._report = null;
    this._closed = false;
  }

  connect() {
    this._closed = false;
    clearTimeout(this._retry);
    const url = new URL(this.url);
    if (this.name) url.searchParams.set("name", this.name);
    if (this.token) url.searchParams.set("token", this.token);
    const socket = new WebSocket(url);
    this._socket = socket;
    socket.onopen = () => {
      this._failures = 0;
      this.onState({ connected: true, retryInMs: null, tokenRefused: false });
      this._report = setInterval(() => this._sendFps(), this.reportEveryMs);
    };
    socket.onmessage = (event) => this._receive(event.data);
    socket.onclose = (event) => this._closedBy(socket, event);
    return this;
  }

  // A new token (from the user): reconnect at once with it.
  setToken(token) {
    this.token = token;
    clearInterval(this._report);
    if (this._socket) {
      this._socket.onclose = null;
      this._socket.close();
    }
    this.connect();
  }

  close() {
    this._closed = true;
    clearTimeout(this._retry);
    clearInterval(this._report);
    if (this._socket) this._socket.close();
  }

  send(message) {
    if (this._socket && this._socket.readyState === WebSocket.OPEN) {
      this._socket.send(JSON.stringify(message));
    }
  }

  _receive(text) {
    const message = JSON.parse(text);
    if (message.type === "ping") {
      this.send({ type: "pong", seq: message.seq });
      return;
    }
    this.onMessage(message);
  }

  _sendFps() {
    if (this.fps && this.fps.fps > 0) {
      this.send({ type: "fps", fps: this.fps.fps, frame_time_ms: this.fps.frameTime });
    }
  }

  _closedBy(socket, event) {
    clearInterval(this._report);
    if (socket !== this._socket || this._closed) return;
    const tokenRefused = event.code === POLICY_VIOLATION && event.reason === TOKEN_REFUSED;
    if (tokenRefused) {
      // Retrying with the same token cannot help: wait for setToken().
      this.onState({ connected: false, retryInMs: null, tokenRefused });
      return;
    }
    // Exponential backoff with jitter, so many pages do not come back in lockstep.
    const base = Math.min(this.maxRetryMs, this.firstRetryMs * 2 ** this._failures);
    const retryInMs = Math.round(base * (0.8 + 0.4 * Math.random()));
    this._failures += 1;
    this.onState({ connected: false, retryInMs, tokenRefused });
    this._retry = setTimeout(() => this.connect(), retryInMs);
  }
}
