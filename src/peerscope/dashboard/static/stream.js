// The one module that knows the layout of what the server sends: the /ws metrics frame, its
// alert pushes, and what REST lists (peers, histories, sessions, alerts, silences, the
// profiler's figures and samples). Everything else in the dashboard consumes
// the plain objects made here, so a new frame format changes this file only.

// A /ws message as {kind: "metrics", frame} | {kind: "alert", alert} | {kind: "other"}.
export function readMessage(message) {
  if (message.type === "metrics") return { kind: "metrics", frame: readFrame(message) };
  if (message.type === "performance_alert") {
    return { kind: "alert", alert: readAlertEvent(message) };
  }
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
      loopLagMs: server.loop_lag_ms ?? null, // the worst since the tick before
      loopLagP99Ms: server.loop_lag_p99_ms ?? null, // over the last minute
    },
    network: {
      score: network.score,
      grade: network.grade,
      band: network.band ?? null,
      byStatus: { ...network.peers_by_status },
    },
    peers: message.clients.map(readPeer),
    peersTotal: message.clients_total,
    alerts: (message.alerts || []).map(readActiveAlert), // the most severe firing ones
    alertsTotal: message.alerts_total ?? (message.alerts || []).length, // all firing
  };
}

// One peer, from a frame's `clients` or from REST (which lists the same fields). Latency,
// jitter and MOS are null while the peer is unanswered: nothing came back, so nothing is
// shown, and `lastMeasuredAt` says how long ago something last did.
export function readPeer(entry) {
  const labels = entry.labels || {};
  const reason = entry.status_reason || {};
  return {
    id: entry.client_id,
    name: entry.name,
    address: entry.address,
    kind: entry.kind,
    labels,
    simulated: labels.simulated === "true",
    status: entry.status,
    reasonKind: reason.kind ?? "unmeasured",
    statusText: entry.status_text ?? "",
    latencyMs: entry.smoothed_latency_ms ?? entry.latency_ms ?? null,
    lastMeasuredAt: entry.last_measured_at ?? null, // epoch seconds
    jitterMs: entry.jitter_ms ?? null,
    lossPercent: entry.packet_loss_percent,
    mos: entry.mos ?? null,
    quality: entry.quality_score ?? null,
    grade: entry.grade ?? null,
    band: entry.band ?? null,
    bytesSent: entry.bytes_sent,
    bytesReceived: entry.bytes_received,
    connectedS: entry.connection_duration,
    lastSeen: entry.last_seen, // epoch seconds
    fps: entry.fps,
    path: entry.path ? readPath(entry.path) : null, // TWAMP/STAMP peers only
  };
}

// Both directions of a peer's path: loss out and back (null while the reflector does not
// say), one-way delays and whether they carry the clocks' offset, the TTL at the reflector.
function readPath(path) {
  return {
    forwardLossPercent: path.forward_loss_percent,
    returnLossPercent: path.return_loss_percent,
    forwardDelayMs: path.forward_delay_ms,
    returnDelayMs: path.return_delay_ms,
    synchronized: path.delay_clock === "synchronized",
    ttl: path.ttl,
    changes: path.path_changes,
    lastChange: path.last_path_change, // epoch seconds
    previousTtl: path.previous_ttl,
  };
}

function severityOf(severity) {
  return ["critical", "warning", "info"].includes(severity) ? severity : "info";
}

// A firing alert, as each frame's `alerts` lists them (GET /api/alerts lists the same, and
// pending ones). `key` names it while it lasts (`rule`, or `rule/peer` for a peer's);
// `startedAt` is when it began firing (epoch seconds).
export function readActiveAlert(entry) {
  return {
    key: entry.key,
    rule: entry.rule ?? "",
    metric: entry.metric ?? "",
    severity: severityOf(entry.severity),
    peerId: entry.peer_id ?? null,
    value: entry.value ?? null,
    threshold: entry.threshold ?? null,
    startedAt: entry.started_at ?? null,
    message: entry.message ?? "",
    silenced: entry.silenced === true,
  };
}

// An alert event: pushed as `performance_alert` the moment it happens, or read from
// GET /api/alerts/history. `id` grows by one per event on a server.
export function readAlertEvent(event) {
  return {
    id: event.id ?? null,
    state: event.state === "resolved" ? "resolved" : "firing",
    repeat: event.repeat === true,
    rule: event.rule ?? "",
    metric: event.metric ?? "",
    severity: severityOf(event.severity),
    peerId: event.peer_id ?? null,
    value: event.value ?? null,
    threshold: event.threshold ?? null,
    message: event.message ?? "",
    silenced: event.silenced === true,
    time: event.timestamp ?? null, // epoch seconds
  };
}

export function readSilence(entry) {
  return {
    id: entry.id,
    matchers: { ...entry.matchers },
    startsAt: entry.starts_at, // epoch seconds
    endsAt: entry.ends_at,
    comment: entry.comment ?? "",
    createdBy: entry.created_by ?? "",
  };
}

// A REST history's [{timestamp, value}] as two columns, for the charts. Where two points
// are further apart than `step` (the means' step; for raw samples three times their usual
// spacing), a null row keeps the line from bridging the time nobody measured: the agent
// was off, or the host could not be read. The cut depends on the times alone, so series
// of one answer keep the same rows.
export function readPoints(points, step = null) {
  const times = [];
  const values = [];
  const gap = step ?? 3 * medianSpacing(points);
  let previous = null;
  for (const point of points) {
    if (previous !== null && point.timestamp - previous > gap) {
      times.push(previous + (step ?? gap / 3));
      values.push(null);
    }
    times.push(point.timestamp);
    values.push(point.value);
    previous = point.timestamp;
  }
  return { times, values };
}

function medianSpacing(points) {
  const spacings = points.slice(1).map((point, i) => point.timestamp - points[i].timestamp)
    .sort((a, b) => a - b);
  return spacings.length ? spacings[Math.floor(spacings.length / 2)] : Infinity;
}

// A peer's history with `step` (`buckets`, oldest first) as chart columns, one row per
// bucket. The server leaves out a bucket in which nothing was sent and nothing came back;
// a null row at its place keeps the lines from bridging the time nobody measured (up to
// `end`, where what follows the buckets begins). In an outage bucket (probes sent, none
// answered) latency, jitter and MOS are null (gaps) and the score 0.
export function readBuckets(history, step, end = null) {
  const columns = { times: [], p50: [], p95: [], lossPercent: [], jitterMs: [], score: [],
                    mos: [] };
  const row = (time, bucket) => {
    columns.times.push(time);
    columns.p50.push(bucket ? bucket.p50 : null);
    columns.p95.push(bucket ? bucket.p95 : null);
    columns.lossPercent.push(bucket ? bucket.loss_percent : null);
    columns.jitterMs.push(bucket ? bucket.jitter_ms : null);
    columns.score.push(bucket ? bucket.score : null);
    columns.mos.push(bucket ? bucket.mos : null);
  };
  let previous = null;
  for (const bucket of history.buckets || []) {
    if (previous !== null && bucket.timestamp - previous > step) row(previous + step, null);
    row(bucket.timestamp, bucket);
    previous = bucket.timestamp;
  }
  if (previous !== null && end !== null && end - previous > step) row(previous + step, null);
  return columns;
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

// One profiled name's figures (ms), as GET /api/profiler lists them. `cpuMs` is null when no
// call's CPU time was measured.
function readProfiledName(entry) {
  return {
    name: entry.name,
    kind: entry.kind,
    calls: entry.calls,
    errors: entry.errors,
    totalMs: entry.total_ms,
    avgMs: entry.avg_ms,
    p95Ms: entry.p95_ms,
    p99Ms: entry.p99_ms,
    maxMs: entry.max_ms,
    cpuMs: entry.cpu_ms ?? null,
    cpuCalls: entry.cpu_calls ?? 0,
  };
}

// GET /api/profiler (and what PUT answers): `names` by total time, most first; `hotspots`
// and `slow` as sets of names.
export function readProfilerState(body) {
  const process = body.process;
  return {
    enabled: body.enabled === true,
    sampling: body.sampling === true,
    names: body.functions.map(readProfiledName),
    hotspots: new Set(body.hotspots.map((entry) => entry.name)),
    slow: new Set(body.slow.map((entry) => entry.name)),
    slowThresholdMs: body.slow_threshold_ms,
    process: {
      cpuPercent: process.cpu_percent,
      rssBytes: process.rss_bytes,
      threads: process.threads,
      openFds: process.open_fds ?? null, // none on Windows
    },
  };
}

// POST /api/profiler/sample's summary: `top`, the functions where the loop's time went,
// by their own time (not that of what they called), most first.
export function readProfilerSample(body) {
  return {
    durationS: body.duration_s,
    sampleCount: body.sample_count,
    cpuTimeS: body.cpu_time_s ?? null,
    top: body.top.map((entry) => ({
      function: entry.function,
      file: entry.file,
      line: entry.line,
      selfS: entry.self_s,
      share: entry.share, // of the sample's duration, 0..1
    })),
  };
}
