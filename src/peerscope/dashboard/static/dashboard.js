// The dashboard page: wires the /ws stream and REST to the panels.

import { AlertsPanel } from "./alerts.js";
import { Api, Unauthorized } from "./api.js";
import { el } from "./dom.js";
import { Header } from "./header.js";
import { HostCharts } from "./host_charts.js";
import { PeerDetail } from "./peer_detail.js";
import { PAGE_SIZE, PeersTable } from "./peers_table.js";
import { FPSCounter, PeerscopeClient } from "./peerscope.js";
import { RANGES, rangePicker } from "./ranges.js";
import { SessionsPanel } from "./sessions.js";
import { readMessage, readPeer, readSession } from "./stream.js";
import { storedToken, TokenPrompt } from "./token.js";

const SESSIONS_EVERY_S = 10;
const LONG_RANGE_EVERY_S = 60;

const $ = (id) => document.getElementById(id);
const api = new Api(storedToken);
const tokenPrompt = new TokenPrompt(document.body, (token) => {
  client.setToken(token);
  loadHistory();
});
const header = new Header($("header"));
const hostCharts = new HostCharts($("host-charts"));
const alerts = new AlertsPanel($("alerts"));
const sessions = new SessionsPanel($("sessions-panel"));
const detail = new PeerDetail($("detail"), api, failed);
const table = new PeersTable($("peers-panel"), {
  onSelect: (id) => {
    detail.open(id, range);
    detail.refresh(Date.now() / 1000);
  },
  fetchPage: async (offset) => {
    let found = null;
    await attempt(async () => {
      const page = await api.peers(PAGE_SIZE, offset);
      found = { peers: page.peers.map(readPeer), total: page.total };
    });
    return found;
  },
});
let range = RANGES[0];
let historyLoadedAt = 0;
let sessionsLoadedAt = 0;

function failed(error) {
  if (error instanceof Unauthorized) tokenPrompt.show();
  else console.warn(error.message); // a REST read failed: the next frame tries again
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
  historyLoadedAt = Date.now() / 1000;
  return attempt(async () => {
    hostCharts.showHistory(await api.systemHistory(range.seconds, range.step));
  });
}

function loadSessions() {
  sessionsLoadedAt = Date.now() / 1000;
  return attempt(async () => {
    sessions.show((await api.sessions(10)).sessions.map(readSession));
  });
}

function showFrame(frame) {
  header.showFrame(frame);
  header.showFps(fps.fps);
  hostCharts.showFrame(frame, range);
  table.showFrame(frame);
  alerts.showActive(frame.alerts);
  detail.refresh(frame.time);
  const now = Date.now() / 1000;
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
    if (read.kind === "metrics") showFrame(read.frame);
    else if (read.kind === "alert") alerts.pushed(read.alert);
  },
  onState: (state) => {
    header.showConnection(state);
    if (state.tokenRefused) tokenPrompt.show();
    else if (state.connected) loadSessions();
  },
}).connect();

// Tests and the benchmark read how the page is doing from here.
window.peerscopeDashboard = { fps, client, table, hostCharts, detail };
document.body.append(el("span", { id: "ready", hidden: true }));
