// The REST API as the dashboard reads it: URLs relative to the page (so the dashboard also
// works when peerscope is mounted under a prefix) and the token as a bearer header.

// A refusal, with the server's own words: its body is {"error": ..., "detail": ...}, the
// detail a sentence or, for a 422, [{field, message}, ...].
export class ApiError extends Error {
  constructor(path, status, body) {
    const said = serverText(body);
    super(`${path}: HTTP ${status}${said ? `: ${said}` : ""}`);
    this.status = status;
    this.said = said || `HTTP ${status}`;
  }
}

// A 401: `token` is the one the request was sent with (null: none).
export class Unauthorized extends ApiError {
  constructor(path, status, body, token) {
    super(path, status, body);
    this.token = token;
  }
}

// What a request's failure says: the server's own words when it answered.
export function failureText(error) {
  return error instanceof ApiError ? error.said : error.message;
}

// Whether the server answered 404: for /api/alerts*, a server without alerting.
export function isNotFound(error) {
  return error instanceof ApiError && error.status === 404;
}

// The file name a Content-Disposition header gives (`attachment; filename="x.html"`).
function attachmentName(header, fallback) {
  const match = /filename="([^"]+)"/.exec(header ?? "");
  return match ? match[1] : fallback;
}

function serverText(body) {
  if (body === null || typeof body !== "object") return typeof body === "string" ? body : "";
  const detail = Array.isArray(body.detail)
    ? body.detail.map((item) => (item.field ? `${item.field}: ${item.message}` : item.message))
      .join("; ")
    : body.detail;
  return [body.error, detail].filter((part) => part !== undefined && part !== null && part !== "")
    .join(": ");
}

async function readBody(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class Api {
  constructor(getToken) {
    this.getToken = getToken;
  }

  // `file`: the answer is a file to save ({blob, filename}), not JSON.
  async request(method, path, { params = {}, body = undefined, file = false } = {}) {
    const url = new URL(path, document.baseURI);
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined) url.searchParams.set(key, String(value));
    }
    const token = this.getToken();
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const options = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    if (!response.ok) {
      const body = await readBody(response);
      if (response.status === 401) throw new Unauthorized(url.pathname, 401, body, token);
      throw new ApiError(url.pathname, response.status, body);
    }
    if (file) {
      const name = attachmentName(response.headers.get("Content-Disposition"), "download");
      return { blob: await response.blob(), filename: name };
    }
    return response.status === 204 ? null : response.json();
  }

  get(path, params = {}) {
    return this.request("GET", path, { params });
  }

  systemHistory(duration, step) {
    return this.get("api/metrics/system/history", { duration, step });
  }

  peers(limit, offset) {
    return this.get("api/metrics/peers", { limit, offset, sort: "quality" });
  }

  peer(id) {
    return this.get(`api/metrics/peers/${encodeURIComponent(id)}`);
  }

  peerLatency(id, duration, step) {
    return this.get(`api/metrics/peers/${encodeURIComponent(id)}/latency`, { duration, step });
  }

  sessions(limit) {
    return this.get("api/metrics/sessions", { limit });
  }

  alerts() {
    return this.get("api/alerts");
  }

  alertHistory(after, limit) {
    return this.get("api/alerts/history", { after, limit });
  }

  silences() {
    return this.get("api/alerts/silences");
  }

  silence(matchers, durationS) {
    return this.request("POST", "api/alerts/silences",
                        { body: { matchers, duration_s: durationS, created_by: "dashboard" } });
  }

  unsilence(id) {
    return this.request("DELETE", `api/alerts/silences/${encodeURIComponent(id)}`);
  }

  profiler(top, slowMs) {
    return this.get("api/profiler", { top, slow_ms: slowMs });
  }

  // change: {enabled?: bool, reset?: bool}; answers the profiler's state after it.
  switchProfiler(change) {
    return this.request("PUT", "api/profiler", { body: change });
  }

  // pyinstrument over the server's loop for `seconds`: its summary (JSON), answered after.
  profilerSample(seconds) {
    return this.request("POST", "api/profiler/sample", { params: { seconds, format: "json" } });
  }

  // The same as pyinstrument's HTML page, a file: {blob, filename}.
  profilerReport(seconds) {
    return this.request("POST", "api/profiler/sample",
                        { params: { seconds, format: "html" }, file: true });
  }
}
