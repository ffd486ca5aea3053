"""The console UI as the gateway serves it: local files only, strict
security headers (CSP without unsafe-inline, no framing, no-store)."""

from __future__ import annotations

import re

from gateway import console_site
from tests.support.gateway import gateway_client, gateway_settings


async def test_the_console_is_served_with_strict_headers() -> None:
    async with gateway_client(gateway_settings({})) as client:
        for path, kind in (
            ("/console", "text/html"),
            ("/console/", "text/html"),
            ("/console/console.js", "text/javascript"),
            ("/console/console.css", "text/css"),
        ):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith(kind)
            csp = response.headers["content-security-policy"]
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/console/../gateway/app.py")).status_code == 404
        assert (await client.get("/console/secrets.txt")).status_code == 404
        assert (await client.post("/console", content=b"")).status_code == 405


def test_the_page_loads_nothing_from_elsewhere_and_nothing_inline() -> None:
    page = (console_site.ROOT / "index.html").read_text()
    assert "<script>" not in page and "style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
    for reference in re.findall(r'(?:src|href)="([^"#]+)"', page):
        assert reference.startswith("/console/"), reference
    script = (console_site.ROOT / "console.js").read_text()
    assert "http://" not in script and "https://" not in script
    assert "innerHTML" not in script and "eval(" not in script
