"""The analyst console's web UI at `/console`, served by the gateway from
`gateway/console_ui/` (plain HTML, CSS and JavaScript kept in the
repository: no build step, no dependency, nothing fetched from a CDN).

Every answer carries strict security headers: a Content-Security-Policy
without `unsafe-inline` (scripts, styles and connections from this origin
only, no framing, no plugins, no base or form redirection), X-Frame-Options
DENY, nosniff, no referrer, and `Cache-Control: no-store` (the pages show
personal data once signed in).
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import Response

ROOT = Path(__file__).parent / "console_ui"
PREFIX = "/console"
_FILES = {
    "/console": ("index.html", "text/html; charset=utf-8"),
    "/console/": ("index.html", "text/html; charset=utf-8"),
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def serve(method: str, path: str) -> Response:
    """The file, 404 for anything else under /console, 405 for non-GET."""
    if method not in ("GET", "HEAD"):
        return Response("method not allowed", 405, headers={**HEADERS, "Allow": "GET, HEAD"})
    found = _FILES.get(path)
    if found is None:
        return Response("not found", 404, media_type="text/plain", headers=HEADERS)
    name, media_type = found
    return Response((ROOT / name).read_bytes(), 200, media_type=media_type, headers=HEADERS)
