"""Pages built on vendored browser code: third-party files that ``make assets`` copies from
npm (pinned in ``web/``) into the package's ``static/vendor`` folder.

A source checkout that never ran ``make assets`` lacks them. A page that needs them then
answers 503 with a page saying how to build them, instead of a page that cannot work. The
check runs per request, so assets built while the server runs are picked up.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from fastapi.responses import FileResponse, HTMLResponse, Response

ASSETS_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>peerscope: {what} assets missing</title>
</head><body><h1>The {what}'s assets are not built</h1>
<p>{library} is missing from {vendor} ({missing}). In a source checkout, run
<code>make assets</code> (it runs <code>npm ci</code> in <code>web/</code> and copies the
vendored files into the package), then reload. The REST API under <code>/api</code> and
<code>/ws</code> work without it.</p></body></html>
"""


def page_headers(connect_src: str) -> dict[str, str]:
    """A page's headers: a Content-Security-Policy that allows nothing but this origin's own
    files (and data: images) and ``connect_src`` for the page's requests, no MIME sniffing of
    its files, no referrer to other sites, and revalidation so a new release's page is
    never stale.

    No inline script or style, no third-party origin: data shown on a page (peer names,
    labels) can never run as code even if some rendering path forgot to treat it as text.
    """
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:; connect-src {connect_src}; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def missing_assets(static_dir: Path, needed: Sequence[str]) -> list[str]:
    """The files of ``needed`` (relative to ``static_dir``) that ``static_dir`` lacks."""
    return [name for name in needed if not (static_dir / name).is_file()]


def vendored_page(
    static_dir: Path,
    page: str,
    needed: Sequence[str],
    *,
    what: str,
    library: str,
    headers: Mapping[str, str],
) -> Callable[[], Awaitable[Response]]:
    """A route serving ``static_dir / page`` with ``headers``, or the 503 while any file of
    ``needed`` is missing. ``what`` names the page and ``library`` the vendored code in the
    503's words."""

    async def endpoint() -> Response:
        missing = missing_assets(static_dir, needed)
        if missing:
            body = ASSETS_MISSING.format(
                what=what,
                library=library,
                vendor=html.escape(str(static_dir / "vendor")),
                missing=", ".join(html.escape(name) for name in missing),
            )
            return HTMLResponse(body, status_code=503, headers=dict(headers))
        return FileResponse(static_dir / page, media_type="text/html", headers=dict(headers))

    return endpoint
