"""The web console: one static page and its script and style, served at `/`.

Nothing is built or fetched from elsewhere (no CDN): the files ship in the package. The
page talks to the same HTTP API with the key the user signs in with; a strict content
security policy keeps it to this server's own scripts and images.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).with_name("console")
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def mount_console(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(CONSOLE_DIR / "index.html", headers=SECURITY_HEADERS)

    app.mount("/console", StaticFiles(directory=CONSOLE_DIR), name="console")
