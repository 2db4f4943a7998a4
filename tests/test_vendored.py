"""The vendored browser files: ``make assets`` built every one a page needs, and the wheel
ships every one it built (the folder is gitignored, so only ``artifacts`` ships it)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from peerscope.server.api_docs import SWAGGER_FILES
from peerscope.server.dashboard import STATIC_DIR, VENDOR_FILES

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_every_vendored_file_and_the_pages_need_no_other():
    built = sorted(
        path for path in (STATIC_DIR / "vendor").iterdir() if not path.name.startswith(".")
    )  # .copied: make's stamp
    assert {*VENDOR_FILES, *SWAGGER_FILES} <= {f"vendor/{path.name}" for path in built}
    # Swagger UI is Apache-2.0: its licence and notice travel with it.
    assert {"swagger-ui.LICENSE.txt", "swagger-ui.NOTICE.txt"} <= {path.name for path in built}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    artifacts = pyproject["tool"]["hatch"]["build"]["artifacts"]
    unshipped = [
        path.name
        for path in built
        if not any(
            fnmatch.fnmatch(path.relative_to(ROOT).as_posix(), pattern) for pattern in artifacts
        )
    ]
    assert unshipped == []
