"""What `import peerscope` offers, and what it costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import peerscope


def test_serve_is_the_agents_entry_point():
    from peerscope.agent import serve

    assert peerscope.serve is serve
    assert "serve" in peerscope.__all__


def test_the_prober_is_exported_on_demand():
    from peerscope.probe.prober import Prober

    assert peerscope.Prober is Prober
    assert {"Prober", "ProbeTarget", "Reflector", "PeerSpec"} <= set(peerscope.__all__)


def test_importing_peerscope_does_not_load_the_http_side_or_the_probe_methods():
    code = (
        "import sys, peerscope; print('fastapi' in sys.modules, 'uvicorn' in sys.modules, "
        "'peerscope.probe.icmp' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False", "False"]


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="nonexistent"):
        peerscope.nonexistent  # noqa: B018


def test_the_version_is_written_once():
    """The package metadata and ``peerscope.__version__`` come from one line, and no module
    imports the version through the package root (which imports the Monitor: a cycle)."""
    from importlib.metadata import version
    from pathlib import Path

    assert version("peerscope") == peerscope.__version__
    source = Path(peerscope.__file__).parent
    literals = [
        path for path in source.rglob("*.py") if f'"{peerscope.__version__}"' in path.read_text()
    ]
    assert [path.name for path in literals] == ["_version.py"]
    through_root = [
        path
        for path in source.rglob("*.py")
        if "from peerscope import __version__" in path.read_text()
    ]
    assert through_root == []
