"""Test support for the demo clients: a fake provider reached through requests without a network."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from flask import Flask
from requests.structures import CaseInsensitiveDict


class InProcessAdapter(requests.adapters.BaseAdapter):
    """Hands a prepared ``requests`` request to a Flask app's test client."""

    def __init__(self, app: Flask):
        super().__init__()
        self.client = app.test_client()

    def send(self, request, **kwargs):
        url = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        body = request.body.encode() if isinstance(request.body, str) else request.body
        result = self.client.open(
            url.path,
            base_url=f"{url.scheme}://{url.netloc}",
            query_string=url.query,
            method=request.method,
            headers=headers,
            data=body,
        )
        response = requests.Response()
        response.status_code = result.status_code
        response.headers = CaseInsensitiveDict(dict(result.headers))
        response._content = result.get_data()
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def route_requests(monkeypatch, app: Flask, base_url: str) -> None:
    """Send every ``requests`` call under ``base_url`` to ``app``; anything else fails
    as if there were no network."""
    adapter = InProcessAdapter(app)

    def get_adapter(session, url):
        if url.startswith(base_url + "/"):
            return adapter
        raise requests.ConnectionError(f"no network in tests: {url}")

    monkeypatch.setattr(requests.Session, "get_adapter", get_adapter)
