"""What `import peerscope` offers, and what it costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import peerscope


def test_serve_is_the_server_entry_point():
    from peerscope.server import serve

    assert peerscope.serve is serve
    assert "serve" in peerscope.__all__


def test_the_prober_is_exported_on_demand():
    from peerscope.probe.prober import Prober

    assert peerscope.Prober is Prober
    assert {"Prober", "ProbeTarget", "Reflector", "PeerSpec"} <= set(peerscope.__all__)


def test_importing_peerscope_does_not_load_the_http_side_or_icmplib():
    code = ("import sys, peerscope; print('fastapi' in sys.modules, 'uvicorn' in sys.modules, "
            "'icmplib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.split() == ["False", "False", "False"]


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="nonexistent"):
        peerscope.nonexistent  # noqa: B018
