// The one module that knows the layout of what the server sends: the /ws metrics frame, its
// alert pushes, and what REST lists (peers, histories, sessions). Everything else in the dashboard consumes
// the plain objects made here, so a new frame format changes this file only.

// A /ws message as {kind: "metrics", frame} | {kind: "alert", alert} | {kind: "other"}.
export function readMessage(message) {
  if (message.type === "metrics") return { kind: "metrics", frame: readFrame(message) };
  if (message.type === "performance_alert") return { kind: "alert", alert: readAlert(message) };
  return { kind: "other" };
}

export function readFrame(message) {
  const system = message.system;
  const server = message.server;
  const network = message.network;
  return {
    time: message.timestamp, // epoch seconds
    system: {
      cpuPercent: system.cpu_percent,
      memoryPercent: system.memory_percent,
      memoryUsedMb: system.memory_used_mb,
      memoryTotalMb: system.memory_total_mb,
      sentBytesPerS: system.network_sent_rate,
      recvBytesPerS: system.network_recv_rate,
    },
    server: {
      uptimeS: server.uptime_seconds,
      activeConnections: server.active_connections,
      messagesPerS: server.messages_per_second,
    },
    network: {
      score: network.score,
      grade: network.grade,
      byStatus: { ...network.peers_by_status },
    },
    peers: message.clients.map(readPeer),
    peersTotal: message.clients_total,
    alerts: (message.alerts || []).map(readAlert),
  };
}

// One peer, from a frame's `clients` or from REST (which lists the same fields).
export function readPeer(entry) {
  return {
    id: entry.client_id,
    name: entry.name,
    address: entry.address,
    kind: entry.kind,
    labels: entry.labels || {},
    status: entry.status,
    latencyMs: entry.smoothed_latency_ms ?? entry.latency_ms ?? null,
    jitterMs: entry.jitter_ms,
    lossPercent: entry.packet_loss_percent,
    mos: entry.mos,
    quality: entry.quality_score,
    grade: entry.grade,
    bytesSent: entry.bytes_sent,
    bytesReceived: entry.bytes_received,
    connectedS: entry.connection_duration,
    lastSeen: entry.last_seen, // epoch seconds
    fps: entry.fps,
  };
}

export function readAlert(alert) {
  return {
    severity: alert.severity || "info",
    state: alert.state || "firing",
    message: alert.message || "",
    metric: alert.metric ?? null,
    value: alert.value ?? null,
    threshold: alert.threshold ?? null,
    peerId: alert.peer_id ?? null,
    time: alert.timestamp ?? null,
  };
}

// A REST history's [{timestamp, value}] as two columns, for the charts.
export function readPoints(points) {
  return { times: points.map((p) => p.timestamp), values: points.map((p) => p.value) };
}

// A peer latency history with `step`: the band of each bucket as columns.
export function readBands(history) {
  const bands = history.bands || [];
  return {
    times: bands.map((b) => b.timestamp),
    p50: bands.map((b) => b.p50),
    p95: bands.map((b) => b.p95),
    max: bands.map((b) => b.max),
  };
}

export function readSession(session) {
  return {
    id: session.game_id,
    name: session.game_name,
    startedAt: session.started_at, // epoch seconds
    durationS: session.duration, // null while it runs
    peers: session.peers,
    averageLatencyMs: session.latency.average,
    p95LatencyMs: session.latency.p95 ?? null,
  };
}
