"""``/api/badge.svg``: a status badge to embed in a README, a wiki or a game server's page.

Two boxes, a label and a status: a peer's name and its score and band (``92 excellent``),
``down``, ``no data`` or ``unknown``; without a peer, the host's firing alerts. Drawn here as
a few lines of SVG: no external service is asked, and every text is XML-escaped and bounded.
"""

from __future__ import annotations

from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query, Response

from peerscope.alerting import Alerting
from peerscope.core.alerts import Severity
from peerscope.core.quality import Band
from peerscope.message import PeerDetail
from peerscope.monitor import Monitor

SVG = "image/svg+xml"
# The dashboard's colours (dashboard.css: the bands, severities and greys), so a badge reads
# as the page does.
BAND_COLOURS: dict[Band, str] = {
    "excellent": "#16a34a",
    "good": "#65a30d",
    "fair": "#d97706",
    "poor": "#ea580c",
    "bad": "#dc2626",
}
SEVERITY_COLOURS: dict[Severity, str] = {
    "critical": "#dc2626",
    "warning": "#d97706",
    "info": "#2563eb",
}
OK = "#16a34a"
DOWN = "#dc2626"
GREY = "#64748b"
LABEL_BACKGROUND = "#334155"
# A name is cut here (and ends in "…"): a badge is a line of a page, not a place for 256
# characters.
MAX_CHARS = 32
HEIGHT = 20
PADDING = 6.0
# Approximate advance widths, in pixels, of 11 px Verdana: the text is then fitted to the
# width computed from them (textLength), so a wrong guess changes spacing, never overlaps.
_NARROW = frozenset("ijlI.,:;'!|()[]{} ")
_SEMI = frozenset('frt-/\\"`')
_WIDE = frozenset("mwMW@%")
BADGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {SVG: {}}, "description": "The badge"},
    404: {"content": {SVG: {}}, "description": "An unknown peer: a badge saying so"},
}


def text_width(text: str) -> float:
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.7
        elif char in _SEMI:
            width += 4.9
        elif char in _WIDE:
            width += 10.5
        elif char.isupper() or not char.isascii():
            width += 8.0
        else:
            width += 6.9
    return width


def shown(text: str) -> str:
    """``text`` as a badge shows it: printable characters only, at most ``MAX_CHARS``."""
    clean = "".join(char if char.isprintable() else "\ufffd" for char in text)
    return clean if len(clean) <= MAX_CHARS else clean[: MAX_CHARS - 1] + "…"


def _xml(text: str) -> str:
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def draw(label: str, status: str, colour: str) -> str:
    """The SVG of a badge: ``label`` on grey, ``status`` on ``colour`` (one of ours, never
    input)."""
    label, status = shown(label), shown(status)
    label_text, status_text = text_width(label), text_width(status)
    left = label_text + 2 * PADDING
    right = status_text + 2 * PADDING
    width = left + right
    title = _xml(f"{label}: {status}")
    texts = []
    for text, middle, length in (
        (label, left / 2, label_text),
        (status, left + right / 2, status_text),
    ):
        for y, paint in (("15", ' fill="#010101" fill-opacity=".3"'), ("14", "")):
            texts.append(
                f'<text x="{middle:.1f}" y="{y}"{paint} textLength="{length:.1f}" '
                f'lengthAdjust="spacingAndGlyphs">{_xml(text)}</text>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.1f}" height="{HEIGHT}" '
        f'role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<clipPath id="corners"><rect width="{width:.1f}" height="{HEIGHT}" rx="3"/></clipPath>'
        '<g clip-path="url(#corners)">'
        f'<rect width="{left:.1f}" height="{HEIGHT}" fill="{LABEL_BACKGROUND}"/>'
        f'<rect x="{left:.1f}" width="{right:.1f}" height="{HEIGHT}" fill="{colour}"/>'
        "</g>"
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f"{''.join(texts)}</g></svg>"
    )


def peer_status(entry: PeerDetail) -> tuple[str, str]:
    """A peer's status text and colour: ``down`` when disconnected or unanswered (score 0
    and no figures), ``no data`` when nothing says how its link is now (unmeasured, or
    stale), else its score and band."""
    score, band = entry["quality_score"], entry["band"]
    if entry["status"] == "disconnected" or (score == 0 and entry["latency_ms"] is None):
        return "down", DOWN
    if score is None or band is None:
        return "no data", GREY
    return f"{score:.0f} {band}", BAND_COLOURS[band]


def alerts_status(alerting: Alerting | None) -> tuple[str, str]:
    """The firing alerts' count, coloured by the worst severity among them."""
    if alerting is None:
        return "off", GREY
    firing = alerting.firing()
    if not firing:
        return "0", OK
    worst = min(firing, key=lambda alert: list(SEVERITY_COLOURS).index(alert["severity"]))
    return f"{len(firing)} firing", SEVERITY_COLOURS[worst["severity"]]


def badge_response(label: str, status: str, colour: str, status_code: int = 200) -> Response:
    # A badge shows now: caches (a README host's image proxy among them) must ask again.
    return Response(
        draw(label, status, colour),
        status_code=status_code,
        media_type=SVG,
        headers={"Cache-Control": "no-cache"},
    )


def build_badge_router(
    monitor: Monitor, alerting: Alerting | None, errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    """``GET /api/badge.svg`` over ``monitor`` (and ``alerting``, for the host's badge)."""
    router = APIRouter(prefix="/api", responses=errors)

    @router.get(
        "/badge.svg",
        response_class=Response,
        responses=BADGE_RESPONSES,
        summary="A status badge (SVG) of a peer, or of the host's alerts",
    )
    async def badge(
        peer: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=128,
                description="A peer's id: its score and band, down, or no data. Without "
                "it: the alerts firing.",
            ),
        ] = None,
    ) -> Response:
        if peer is None:
            return badge_response("alerts", *alerts_status(alerting))
        try:
            entry = monitor.peer(peer)
        except KeyError:
            return badge_response(peer, "unknown", GREY, 404)
        return badge_response(entry["name"] or peer, *peer_status(entry))

    return router
