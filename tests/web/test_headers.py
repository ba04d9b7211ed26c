"""What the page's server answers: no wildcard CORS, its own origin only, nothing to frame."""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from tests.support.web import WebServer


async def test_no_response_allows_every_origin(loopback: WebServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path in (
            "/",
            "/static/js/textual.js",
            "/static/fonts/RobotoMono-VariableFont_wght.ttf",
        ):
            async with http.get(
                URL(loopback.url).with_path(path), headers={"Origin": "http://evil.example"}
            ) as response:
                assert response.status == 200, path
                assert "Access-Control-Allow-Origin" not in response.headers, path
                assert response.headers["X-Frame-Options"] == "DENY"


async def test_the_page_fetches_nothing_from_elsewhere(loopback: WebServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(loopback.url) as response:
        page = await response.text()
    assert "googleapis" not in page
    for link in ("static/css/xterm.css", "static/js/textual.js", "static/fonts/RobotoMono"):
        assert f"{loopback.url}{link}" in page
    assert f'data-session-websocket-url="ws://{URL(loopback.url).authority}/ws"' in page


async def test_a_foreign_host_or_origin_is_refused(loopback: WebServer) -> None:
    """A site that rebinds its name to 127.0.0.1 sends its own Host; one that opens the
    websocket from its page sends its own Origin."""
    port = URL(loopback.url).port
    async with aiohttp.ClientSession() as http:
        async with http.get(loopback.url, headers={"Host": f"evil.example:{port}"}) as response:
            assert response.status == 403
        ws = URL(loopback.url).with_path("/ws")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws, headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403


async def test_behind_a_tls_proxy_the_page_links_are_https(loopback: WebServer) -> None:
    authority = URL(loopback.url).authority
    async with (
        aiohttp.ClientSession() as http,
        http.get(loopback.url, headers={"X-Forwarded-Proto": "https"}) as response,
    ):
        page = await response.text()
    assert f'data-session-websocket-url="wss://{authority}/ws"' in page
    assert f"https://{authority}/static/js/textual.js" in page
