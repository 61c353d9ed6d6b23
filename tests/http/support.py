"""An HTTP client for the tests that validates every response against /openapi.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from tests.service.support import ServerProcess, start_server_process


def start_http_server(data_dir: Path, log_path: Path, *extra: str) -> tuple[ServerProcess, str]:
    """`facedb serve --http-port 0` as a subprocess; (process, http base URL)."""
    server = start_server_process(data_dir, log_path, "--http-port", "0", *extra)
    started = next(e for e in server.log_lines() if e.get("msg") == "facedb serving")
    return server, f"http://{started['http_address']}"


class Api:
    """requests against one server; each response is checked against the OpenAPI document."""

    def __init__(
        self,
        base: str,
        key: str | None,
        spec: OpenAPI | None = None,
        log: Path | None = None,
        **tls: Any,
    ):
        self.base = base
        self.log = log  # the server's log: its errors are shown when a call fails with 5xx
        self.session = requests.Session()
        self.session.headers.update({"x-api-key": key} if key else {})
        self.session.verify = tls.pop("verify", True)
        self.session.cert = tls.pop("cert", None)
        self.spec = spec
        self.checked = 0

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 120)
        response = self.session.request(method, self.base + path, **kwargs)
        if response.status_code >= 500 and response.status_code != 504 and self.log is not None:
            errors = [line for line in self.log.read_text().splitlines() if '"ERROR"' in line]
            raise AssertionError(f"{method} {path}: {response.text}\n" + "\n".join(errors[-3:]))
        if self.spec is not None:
            self.spec.validate_response(
                RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
            )
            self.checked += 1
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", path, **kwargs)


def error_of(response: requests.Response) -> tuple[int, str, str]:
    """(HTTP status, gRPC status name, message) of an error response."""
    error = response.json()["error"]
    assert error["code"] == response.status_code
    return response.status_code, error["status"], error["message"]
