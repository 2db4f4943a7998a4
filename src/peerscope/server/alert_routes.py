"""``/api/alerts``: active alerts, their history, the rules, silences and notifiers; and the
alerts the ``/ws`` metrics message carries.

Without an :class:`~peerscope.alerting.Alerting` the paths are still served (and documented),
answering 404 ``{"error": "alerting: not enabled on this server", ...}``. Errors in a body
name the field as the checks of :class:`~peerscope.core.alerts.AlertRule` and of silences
do (``rules[2].clear``, ``ends_at``), whether pydantic or the check found them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, Literal, cast

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from peerscope.alerting import Alerting
from peerscope.alerting.records import SilenceEntry
from peerscope.alerting.silences import MAX_SILENCE_S
from peerscope.core.alerts import AlertRule
from peerscope.core.validation import preview
from peerscope.events import MetricsTick
from peerscope.message import MetricsMessage
from peerscope.monitor import Monitor
from peerscope.server import schemas
from peerscope.server.edge import ApiError
from peerscope.server.rest import BAD_BODY, epoch_query

NOT_ENABLED = "alerting: not enabled on this server"
HISTORY_LIMIT = 10_000
JSON = "application/json"
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorBody, "description": "Alerting is not enabled on this server"},
}
UNKNOWN_SILENCE: dict[int | str, dict[str, Any]] = {
    404: {
        "model": schemas.ErrorBody,
        "description": "No silence in force has this id, or alerting is not enabled",
    },
}
Since = Annotated[float | None, epoch_query("from", "Epoch seconds, included.")]
Until = Annotated[float | None, epoch_query("to", "Epoch seconds, included.")]


# --- the metrics message --------------------------------------------------------------------


def tick_message(tick: MetricsTick, alerting: Alerting | None, limit: int) -> MetricsMessage:
    """The ``/ws`` message of ``tick`` with this tick's firing alerts (the ``limit`` most
    severe, and their count): ``tick`` is evaluated first (once, whichever subscriber of the
    Monitor asks first)."""
    message = tick.message()
    if alerting is not None:
        alerting.evaluate(tick)
        message["alerts"] = _firing(alerting, limit)
        message["alerts_total"] = alerting.count("firing")
    return message


def with_alerts(message: MetricsMessage, alerting: Alerting | None, limit: int) -> MetricsMessage:
    """``message`` (the Monitor's, shared: never changed) with the alerts firing now."""
    if alerting is None:
        return message
    return {
        **message,
        "alerts": _firing(alerting, limit),
        "alerts_total": alerting.count("firing"),
    }


def _firing(alerting: Alerting, limit: int) -> list[dict[str, Any]]:
    # The message sits below alerting and types its list loosely; these are ActiveAlerts.
    return cast(list[dict[str, Any]], alerting.firing(limit))


# --- bodies ---------------------------------------------------------------------------------


class SilenceBody(BaseModel):
    """A new silence: until ``ends_at``, or for ``duration_s`` from now (one of the two)."""

    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(
        min_length=1,
        description="Labels an alert must hold to be silenced, e.g. "
        '{"alertname": "high_latency", "peer_id": "eu-1"}.',
    )
    ends_at: float | None = Field(None, description="Epoch seconds, at most 30 days ahead.")
    duration_s: float | None = Field(
        None,
        gt=0,
        le=MAX_SILENCE_S,
        allow_inf_nan=False,
        description="Seconds from now (at most 30 days), instead of ends_at.",
    )
    comment: str = ""
    created_by: str = ""


def problem(error: ValueError, prefix: str = "") -> dict[str, str]:
    """``ValueError("field: message")`` as an item of a 422's detail, its field under
    ``prefix`` (``rules[2]``)."""
    field, sep, message = str(error).partition(": ")
    if not sep:
        field, message = "", str(error)
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    return {"field": field, "message": message}


def body_field(loc: Sequence[int | str]) -> str:
    """Where pydantic found a body's fault, named as the checks name it: ``("body", "rules",
    2, "op")`` is ``rules[2].op``."""
    name = ""
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or str(loc[0])


def _in_body(loc: Sequence[int | str]) -> bool:
    """Whether ``loc`` is a field of the body (not the body as a whole, nor a place in text
    that is not JSON)."""
    return len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], str)


class AlertRoute(APIRoute):
    """A route whose body faults are named as the alerting checks name them (``rules[2].op``,
    not ``body.rules.2.op``), so a client reads one kind of field name from either."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_named(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as error:
                raise RequestValidationError(
                    [
                        {**item, "loc": (body_field(item["loc"]),)}
                        if _in_body(item["loc"])
                        else item
                        for item in error.errors()
                    ]
                ) from None

        return handle_named


def rule_body(rule: AlertRule) -> dict[str, Any]:
    return dataclasses.asdict(rule)


def checked_rules(body: schemas.AlertRules) -> list[AlertRule]:
    """The rules of ``body``; 422 naming every field at fault (``rules[i].field``)."""
    rules: list[AlertRule] = []
    problems: list[dict[str, str]] = []
    for index, rule in enumerate(body.rules):
        try:
            rules.append(AlertRule(**rule.model_dump()))
        except ValueError as error:
            problems.append(problem(error, f"rules[{index}]"))
    if problems:
        raise HTTPException(422, problems)
    return rules


def silence_end(body: SilenceBody, now: float) -> tuple[float, str]:
    """When the silence ends, and the field that said so; 422 unless exactly one did."""
    if body.ends_at is not None and body.duration_s is not None:
        raise HTTPException(
            422, [{"field": "duration_s", "message": "give ends_at or duration_s, not both"}]
        )
    if body.duration_s is not None:
        return now + body.duration_s, "duration_s"
    if body.ends_at is None:
        raise HTTPException(
            422,
            [{"field": "ends_at", "message": "give ends_at (epoch seconds) or duration_s"}],
        )
    return body.ends_at, "ends_at"


# --- the routes -----------------------------------------------------------------------------


def build_alerts_router(
    alerting: Alerting | None, monitor: Monitor, errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    """The ``/api/alerts`` routes over ``alerting`` of ``monitor`` (404 on each when it is
    None)."""

    def enabled() -> Alerting:
        if alerting is None:
            raise ApiError(
                404,
                "alerting: this server was started without alerting; /api/alerts needs it",
                error=NOT_ENABLED,
            )
        return alerting

    router = APIRouter(
        prefix="/api/alerts",
        responses={**errors, **NOT_FOUND},
        route_class=AlertRoute,
        # A dependency of every route, so that a server without alerting says so before it
        # looks at a body.
        dependencies=[Depends(enabled)],
    )

    @router.get(
        "",
        response_model=schemas.Alerts,
        summary="Pending and firing alerts",
    )
    async def active(
        state: Annotated[
            Literal["firing", "pending"] | None,
            Query(description="Only alerts in this state."),
        ] = None,
    ) -> Response:
        on = enabled()
        # Built here, not checked against the model: thousands of alerts (every peer behind
        # one failed link) would hold the loop for FastAPI's check.
        alerts = on.active(state=state)
        return Response(
            orjson.dumps({"alerts": alerts, "last_event_id": on.last_event_id}), media_type=JSON
        )

    @router.get(
        "/history",
        response_model=schemas.AlertHistory,
        summary="Alert events (fired, repeated, resolved), oldest first",
    )
    async def history(
        after: Annotated[
            int | None, Query(ge=0, description="Only events with a larger id (incremental).")
        ] = None,
        since: Since = None,
        until: Until = None,
        limit: Annotated[
            int, Query(ge=1, le=HISTORY_LIMIT, description="At most this many (the oldest).")
        ] = 500,
    ) -> Response:
        on = enabled()
        events = on.history(after=after, start=since, end=until, limit=limit)
        return Response(
            orjson.dumps({"events": events, "last_event_id": on.last_event_id}),
            media_type=JSON,
        )

    @router.get("/rules", response_model=schemas.AlertRules, summary="The rules evaluated")
    async def rules() -> dict[str, Any]:
        return {"rules": [rule_body(rule) for rule in enabled().rules]}

    @router.put(
        "/rules",
        response_model=schemas.AlertRules,
        responses=BAD_BODY,
        summary="Replace the rules (a bad one changes nothing)",
    )
    async def replace_rules(body: schemas.AlertRules) -> dict[str, Any]:
        on = enabled()
        try:
            on.set_rules(checked_rules(body))
        except ValueError as error:  # two rules of one name
            raise HTTPException(422, [problem(error)]) from None
        return {"rules": [rule_body(rule) for rule in on.rules]}

    @router.get("/silences", response_model=schemas.Silences, summary="The silences in force")
    async def silences() -> dict[str, Any]:
        return {"silences": enabled().silences()}

    @router.post(
        "/silences",
        status_code=201,
        response_model=SilenceEntry,
        responses=BAD_BODY,
        summary="Silence the alerts matching some labels: shown, told to no notifier",
    )
    async def add_silence(body: SilenceBody) -> Any:
        on = enabled()
        ends_at, given = silence_end(body, monitor.now())
        try:
            return on.silence(
                body.matchers, ends_at, comment=body.comment, created_by=body.created_by
            )
        except ValueError as error:
            found = problem(error)
            if found["field"] == "ends_at":
                found["field"] = given
            raise HTTPException(422, [found]) from None

    @router.delete(
        "/silences/{silence_id}",
        status_code=204,
        responses=UNKNOWN_SILENCE,
        summary="End a silence",
    )
    async def remove_silence(silence_id: str) -> Response:
        if not enabled().unsilence(silence_id):
            raise HTTPException(404, f"silence_id: no silence {preview(silence_id)} is in force")
        return Response(status_code=204)

    @router.get(
        "/notifiers",
        response_model=schemas.Notifiers,
        summary="What each notifier sent, retried, dropped and gave up on",
    )
    async def notifiers() -> dict[str, Any]:
        return {"notifiers": enabled().notifier_stats()}

    return router
