"""``/api/profiler``: the function profiler's figures and switch, and on-demand sampling.

``GET`` reads what :mod:`peerscope.profiler` timed (every name, the hotspots, the slow ones,
the process); ``PUT`` turns it on or off and resets it; ``POST /api/profiler/sample`` runs
pyinstrument over the event loop's thread for some seconds and answers its report: a
summary and the call tree as JSON, or pyinstrument's page as a file to open
(``format=html``). Behind the API's token like the rest of ``/api``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from peerscope.profiler import Profiler
from peerscope.profiler.sampling import MAX_SAMPLE_S, SamplerBusyError, is_sampling, sample_loop
from peerscope.server import schemas
from peerscope.server.edge import ApiError
from peerscope.server.rest import BAD_BODY

JSON = "application/json"
BUSY: dict[int | str, dict[str, Any]] = {
    409: {"model": schemas.ErrorBody, "description": "A sample is already being taken"},
}


class ProfilerSwitch(BaseModel):
    """What ``PUT /api/profiler`` changes; a field left out is left as it is."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not False
    enabled: bool | None = Field(None, description="Time the profiled functions (or stop).")
    reset: bool = Field(False, description="Forget every figure recorded so far.")


Top = Annotated[int, Query(ge=1, le=1000, description="How many hotspots to list.")]
SlowMs = Annotated[
    float,
    Query(
        ge=0,
        le=3_600_000,
        allow_inf_nan=False,
        description="List as slow the names whose p95 call takes longer (ms).",
    ),
]


def profiler_state(profiler: Profiler, top: int, slow_ms: float) -> dict[str, Any]:
    """The ``GET /api/profiler`` body."""
    functions = sorted(profiler.function_stats(), key=lambda stats: -stats.total_ms)
    return {
        "enabled": profiler.is_enabled(),
        "sampling": is_sampling(),
        "functions": [stats.as_dict() for stats in functions],
        "hotspots": [stats.as_dict() for stats in profiler.hotspots(top)],
        "slow_threshold_ms": slow_ms,
        "slow": [stats.as_dict() for stats in profiler.slow_functions(slow_ms)],
        "process": profiler.process_stats().as_dict(),
    }


def build_profiler_router(profiler: Profiler, errors: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(prefix="/api/profiler", responses=errors)

    @router.get(
        "",
        response_model=schemas.ProfilerState,
        summary="The profiled functions' figures, hotspots, slow ones and the process",
    )
    async def read(top: Top = 10, slow_ms: SlowMs = 10.0) -> Response:
        return Response(orjson.dumps(profiler_state(profiler, top, slow_ms)), media_type=JSON)

    @router.put(
        "",
        response_model=schemas.ProfilerState,
        responses=BAD_BODY,
        summary="Turn the profiler on or off, or reset its figures",
    )
    async def switch(body: ProfilerSwitch) -> Response:
        if body.reset:
            profiler.reset()
        if body.enabled is True:
            profiler.enable()
        elif body.enabled is False:
            profiler.disable()
        return Response(orjson.dumps(profiler_state(profiler, 10, 10.0)), media_type=JSON)

    @router.post(
        "/sample",
        response_model=schemas.ProfilerSample,
        responses={
            **BUSY,
            200: {
                "content": {"text/html": {}},
                "description": "The report: JSON, or with format=html pyinstrument's page "
                "as a file to save and open",
            },
        },
        summary="Sample the event loop's thread with pyinstrument for some seconds",
    )
    async def sample(
        seconds: Annotated[
            float,
            Query(
                gt=0,
                le=MAX_SAMPLE_S,
                allow_inf_nan=False,
                description="How long to sample (the answer comes after).",
            ),
        ] = 5.0,
        interval_ms: Annotated[
            float,
            Query(
                ge=0.1,
                le=100,
                allow_inf_nan=False,
                description="Time between two samples of the stack.",
            ),
        ] = 1.0,
        format: Annotated[
            Literal["json", "html"], Query(description="The report's form.")
        ] = "json",
    ) -> Response:
        try:
            report = await sample_loop(seconds, interval_ms / 1000.0)
        except SamplerBusyError as error:
            raise ApiError(409, str(error), error="profiler: busy") from None
        # Rendering a long sample takes a while: off the loop, which it was meant to show.
        if format == "html":
            page = await asyncio.to_thread(report.html)
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(report.started_at))
            return Response(
                page,
                media_type="text/html",
                headers={
                    "Content-Disposition": f'attachment; filename="peerscope-profile-{stamp}.html"'
                },
            )
        summary = await asyncio.to_thread(report.summary)
        return Response(orjson.dumps(summary), media_type=JSON)

    return router
