// The REST API as the dashboard reads it: URLs relative to the page (so the dashboard also
// works when peerscope is mounted under a prefix) and the token as a bearer header.

export class Unauthorized extends Error {}

export class Api {
  constructor(getToken) {
    this.getToken = getToken;
  }

  async get(path, params = {}) {
    const url = new URL(path, document.baseURI);
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined) url.searchParams.set(key, String(value));
    }
    const token = this.getToken();
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch(url, { headers, cache: "no-store" });
    if (response.status === 401) throw new Unauthorized(await response.text());
    if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status}`);
    return response.json();
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
}
