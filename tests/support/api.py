"""A small client of the switch's admin REST API (issue 18) for tests: JSON in and out,
the status kept, no exception for 4xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes


class ApiClient:
    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.token = token

    def with_token(self, token: str | None) -> ApiClient:
        return ApiClient(self.base, token)

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json", raw: bytes | None = None,
                timeout: float = 15.0) -> Answer:
        headers = {}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                content = resp.read()
                status, got = resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            content, status, got = exc.read(), exc.code, dict(exc.headers)
        try:
            parsed: Any = json.loads(content) if content else None
        except ValueError:
            parsed = content.decode("utf-8", "replace")
        return Answer(status, parsed, got, content)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def put(self, path: str, body: Any) -> Answer:
        return self.request("PUT", path, body)

    def post(self, path: str, body: Any = None) -> Answer:
        return self.request("POST", path, body if body is not None else {})

    def login(self, username: str, password: str, domain: str | None = None) -> ApiClient:
        body = {"username": username, "password": password}
        if domain:
            body["domain"] = domain
        got = self.with_token(None).post("/api/v1/session", body)
        assert got.status == 200, got.body
        return self.with_token(got.body["token"])
