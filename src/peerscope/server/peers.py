"""``/api/peers``: the peers this agent probes, added and removed at run time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from peerscope.config import PeerSpec
from peerscope.core.probe_target import ProbeTarget
from peerscope.core.validation import preview
from peerscope.monitor import Monitor
from peerscope.peer_table import PeerLimitError
from peerscope.probe.prober import Prober
from peerscope.server import schemas
from peerscope.server.rest import NOT_FOUND, raw_peer_id

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": schemas.ErrorBody,
        "description": "A peer with this id exists already, or max_peers are registered",
    }
}


def probed(target: ProbeTarget, error: str | None = None) -> dict[str, Any]:
    return {
        "id": target.peer_id,
        "name": target.name,
        "address": target.address,
        "method": target.method,
        "padding": target.padding,
        "dscp": target.dscp,
        "error": error,
    }


def build_peers_router(
    monitor: Monitor, prober: Prober, errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    """The routes over ``prober``, which records into ``monitor``."""
    router = APIRouter(prefix="/api", responses=errors)

    @router.get("/peers", response_model=schemas.ProbedPeers, summary="The peers probed")
    async def list_probed() -> dict[str, Any]:
        return {
            "peers": [probed(target, prober.error(target.peer_id)) for target in prober.targets()]
        }

    @router.post(
        "/peers",
        status_code=201,
        response_model=schemas.ProbedPeer,
        responses=CONFLICT,
        summary="Start probing a peer",
    )
    async def add_probed(spec: PeerSpec) -> dict[str, Any]:
        target = spec.target()
        if target.peer_id in monitor:
            # Replacing it would take over another source's peer (a /ws client, say).
            raise HTTPException(409, f"id: peer {preview(target.peer_id)} exists; DELETE it first")
        try:
            prober.add(target)
        except PeerLimitError as error:
            raise HTTPException(409, str(error)) from None
        if not prober.is_running:
            await prober.start()
        return probed(target)

    @router.delete(
        "/peers/{peer_id:path}",
        status_code=204,
        responses=NOT_FOUND,
        summary="Stop probing a peer and forget it",
    )
    async def remove_probed(request: Request, peer_id: str) -> Response:
        peer_id = raw_peer_id(request, "", after="/api/peers/") or peer_id
        if not prober.remove(peer_id):
            raise HTTPException(404, f"peer_id: {preview(peer_id)} is not probed")
        return Response(status_code=204)

    return router
