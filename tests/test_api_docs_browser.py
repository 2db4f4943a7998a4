"""``/docs`` in headless Chromium with every other origin unreachable: Swagger UI renders the
API from the package's own files, under the page's Content-Security-Policy, and its
"Authorize" button still carries the bearer token to the API."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from playwright.async_api import Locator, Page, Route
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from peerscope import Monitor
from tests.browser_support import BrowserPage, browser_page
from tests.server_support import LiveServer, live_server
from tests.test_api_docs_server import TOKEN, quiet_monitor

# Swagger UI's element ids: "operations-<tag>-<operationId>"; the API's operations have no
# tag, so Swagger UI files them under "default".
SUMMARY_OP = "#operations-default-summary_api_metrics_summary_get"
HEALTH_OP = "#operations-default-health_api_health_get"
SERVER_OP = "#operations-default-server_api_metrics_server_get"
# Recorded from the first script that runs, so a violation during start-up is not missed.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => window.cspViolations.push(
    `${event.effectiveDirective} ${event.blockedURI}`));
"""


@dataclass
class OfflineDocs:
    """The page, and every request it tried to send anywhere but the server."""

    browser: BrowserPage
    live: LiveServer
    off_origin: list[str] = field(default_factory=list)

    @property
    def page(self) -> Page:
        return self.browser.page

    async def csp_violations(self) -> list[str]:
        found: list[str] = await self.page.evaluate("window.cspViolations")
        return found

    async def open(self) -> None:
        """Open /docs and wait until Swagger UI lists the API's operations."""
        response = await self.page.goto(self.live.url + "/docs")
        assert response is not None
        assert response.status == 200
        try:
            await self.page.locator(SUMMARY_OP).wait_for(timeout=15_000)
        except PlaywrightTimeoutError:
            raise AssertionError(
                f"Swagger UI rendered no operation; requests to other origins: "
                f"{self.off_origin}; console errors: {self.browser.errors}"
            ) from None

    async def assert_clean(self, expected_errors: tuple[str, ...] = ()) -> None:
        """Nothing was sent off the server, nothing broke the policy, and the console shows
        no error but ``expected_errors``."""
        assert self.off_origin == []
        assert await self.csp_violations() == []
        assert self.browser.errors == list(expected_errors)


@contextlib.asynccontextmanager
async def offline_docs(monitor: Monitor) -> AsyncIterator[OfflineDocs]:
    """A live server and a browser page that can reach that server and nothing else."""
    async with live_server(monitor) as live, browser_page(height=1200) as browser:
        docs = OfflineDocs(browser, live)

        async def only_the_server(route: Route) -> None:
            url = route.request.url
            if url.startswith(live.url + "/"):
                await route.continue_()
            else:
                docs.off_origin.append(url)
                await route.abort("internetdisconnected")

        await browser.page.route("**/*", only_the_server)
        await browser.page.add_init_script(RECORD_CSP_VIOLATIONS)
        yield docs


async def expand(operation: Locator) -> None:
    await operation.locator(".opblock-summary-control").click()
    await operation.locator(".opblock-body").wait_for(timeout=5000)


async def execute(operation: Locator) -> tuple[str, str]:
    """Run an expanded operation from the page ("Try it out", then "Execute") and return
    the HTTP status and body the page shows for the live response."""
    # "Try it out" stays on after the first run: the button then reads "Cancel".
    try_it = operation.get_by_role("button", name="Try it out")
    await operation.get_by_role("button", name=re.compile("^(Try it out|Cancel)$")).wait_for()
    if await try_it.count():
        await try_it.click()
    await operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table .response")
    await live.first.wait_for(timeout=10_000)
    status = await live.first.locator(".response-col_status").inner_text()
    body = await live.first.locator(".response-col_description pre").first.inner_text()
    await operation.get_by_role("button", name="Clear").click()
    return status.strip(), body


async def test_docs_render_the_api_with_no_other_origin_reachable():
    async with offline_docs(quiet_monitor()) as docs:
        await docs.open()
        page = docs.page
        assert (await page.locator(".info .title").inner_text()).startswith("peerscope")
        # Swagger UI's stylesheet applied too: GET badges are its blue.
        badge = page.locator(f"{SUMMARY_OP} .opblock-summary-method")
        assert (
            await badge.evaluate("(el) => getComputedStyle(el).backgroundColor")
            == "rgb(97, 175, 254)"
        )
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        # Swagger UI puts zero-width spaces after the slashes, for line breaking.
        assert {"/api/metrics/summary", "/api/health", "/api/metrics/peers/{peer_id}"} <= {
            path.replace("\u200b", "") for path in paths
        }
        # A known operation expands to its description, and runs against the live API.
        health = page.locator(HEALTH_OP)
        await expand(health)
        assert "Is peerscope up?" in await health.locator(".opblock-summary").inner_text()
        status, body = await execute(health)
        assert status == "200"
        assert '"monitor_running": true' in body
        # A schema expands to its fields.
        schemas = page.locator("section.models")
        await schemas.get_by_role("button", name="Health", exact=True).click()
        await schemas.get_by_text("websocket_subscribers", exact=True).wait_for(timeout=5000)
        await docs.assert_clean()


async def test_with_a_token_authorize_sends_it_and_the_api_answers():
    async with offline_docs(quiet_monitor(token=TOKEN)) as docs:
        await docs.open()  # the page and /openapi.json need no token
        page = docs.page
        server = page.locator(SERVER_OP)
        await expand(server)
        status, body = await execute(server)
        assert status == "401"
        assert "missing or wrong bearer token" in body
        # Authorize with the bearer scheme the document declares, then run it again.
        await page.locator(".auth-wrapper .authorize").click()
        dialog = page.locator(".modal-ux")
        assert "HTTPBearer" in await dialog.inner_text()
        await dialog.locator("input").fill(TOKEN)
        async with page.expect_request(
            lambda request: request.url.endswith("/api/metrics/server")
        ) as sent:
            await dialog.get_by_role("button", name="Apply credentials").click()
            await dialog.get_by_role("button", name="Close").click()
            status, body = await execute(server)
        assert (await sent.value).headers["authorization"] == f"Bearer {TOKEN}"
        assert status == "200"
        assert '"uptime_seconds"' in body
        # Chromium logs the first, unauthorized, call; nothing else.
        await docs.assert_clean(
            expected_errors=(
                "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
            )
        )
