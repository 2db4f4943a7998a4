// The dashboard page: wires the /ws stream and REST to the panels. Every time it shows or
// charts is the server's (clock.js): each frame's own, or the server's clock between frames.

import { AlertsPanel } from "./alerts.js";
import { Api, Unauthorized } from "./api.js";
import { monotonicS, ServerClock } from "./clock.js";
import { el } from "./dom.js";
import { Header } from "./header.js";
import { HostCharts } from "./host_charts.js";
import { PeerDetail } from "./peer_detail.js";
import { PAGE_SIZE, PeersTable } from "./peers_table.js";
import { FPSCounter, PeerscopeClient } from "./peerscope.js";
import { ProfilerPanel } from "./profiler_panel.js";
import { RANGES, rangePicker } from "./ranges.js";
import { SessionsPanel } from "./sessions.js";
import { readMessage, readPeer, readSession } from "./stream.js";
import { storedToken, TokenPrompt } from "./token.js";

const SESSIONS_EVERY_S = 10;
const LONG_RANGE_EVERY_S = 60;

const $ = (id) => document.getElementById(id);
const api = new Api(storedToken);
const clock = new ServerClock();
const tokenPrompt = new TokenPrompt(document.body, (token) => {
  client.setToken(token);
  loadHistory();
  profiler.refresh();
});
const header = new Header($("header"));
const hostCharts = new HostCharts($("host-charts"), clock);
const sessions = new SessionsPanel($("sessions-panel"));
const detail = new PeerDetail($("detail"), api, clock, failed);
const table = new PeersTable($("peers-panel"), {
  onSelect: selectPeer,
  fetchPage: async (offset) => {
    let found = null;
    await attempt(async () => {
      const page = await api.peers(PAGE_SIZE, offset);
      found = { peers: page.peers.map(readPeer), total: page.total };
    });
    return found;
  },
});
const alerts = new AlertsPanel($("alerts"), {
  heading: $("alerts-title"), api, onSelectPeer: selectPeer, onError: failed,
});
// Read on its own timer, not per frame: its figures change slowly and cost the server a sort.
const profiler = new ProfilerPanel($("profiler-panel"), { api, onUnauthorized: failed });
let range = RANGES[0];
let historyLoadedAt = -Infinity; // monotonicS() of the last read
let sessionsLoadedAt = -Infinity;

// A peer picked in the table or an alert: its charts open.
function selectPeer(id) {
  detail.open(id, range);
  detail.refresh(clock.now());
}

function failed(error) {
  // A refusal of a token the user has replaced since (an answer slower than the user) says
  // nothing of the new one.
  if (error instanceof Unauthorized) {
    if (error.token === storedToken()) tokenPrompt.show();
  } else console.warn(error.message); // a REST read failed: the next frame tries again
}

// A REST read whose failure the next frame retries (or that asks for the token).
async function attempt(read) {
  try {
    await read();
  } catch (error) {
    failed(error);
  }
}

function loadHistory() {
  historyLoadedAt = monotonicS();
  return attempt(async () => {
    hostCharts.showHistory(await api.systemHistory(range.seconds, range.step));
  });
}

function loadSessions() {
  sessionsLoadedAt = monotonicS();
  return attempt(async () => {
    sessions.show((await api.sessions(10)).sessions.map(readSession));
  });
}

function showFrame(frame) {
  header.showFrame(frame);
  header.showFps(fps.fps);
  hostCharts.showFrame(frame, range);
  table.showFrame(frame);
  alerts.showFrame(frame);
  detail.refresh(frame.time, frame);
  const now = monotonicS();
  if (!range.live && now - historyLoadedAt >= LONG_RANGE_EVERY_S) loadHistory();
  if (now - sessionsLoadedAt >= SESSIONS_EVERY_S) loadSessions();
}

rangePicker($("ranges"), (picked) => {
  range = picked;
  detail.setRange(picked);
  loadHistory();
})(range);

const fps = new FPSCounter().run();
const client = new PeerscopeClient({
  name: "dashboard",
  token: storedToken(),
  fps,
  onMessage: (message) => {
    const read = readMessage(message);
    if (read.kind === "metrics") {
      clock.observe(read.frame.time);
      showFrame(read.frame);
    }
    else if (read.kind === "alert") alerts.pushed(read.alert);
  },
  onState: (state) => {
    header.showConnection(state);
    profiler.setServerUp(state.connected || state.tokenRefused);
    if (state.tokenRefused) tokenPrompt.show();
    else if (state.connected) {
      loadSessions();
      alerts.catchUp();
    }
  },
}).connect();
profiler.refresh();

// Tests and the benchmark read how the page is doing from here.
window.peerscopeDashboard = { fps, client, clock, table, hostCharts, detail, alerts, profiler };
document.body.append(el("span", { id: "ready", hidden: true }));
