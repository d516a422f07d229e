"""WSGI middleware around the app: the request id, one log line and the metrics of every request."""

from __future__ import annotations

import re
import time

from ..random_bytes import token_bytes
from ..telemetry import logs, metrics
from ..telemetry.requests import CLIENT_ID_KEY, ENDPOINT_KEY

# What we accept from a proxy as a request id: short and log-safe.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
_RID_LENGTH = len("X-Request-Id")


def request_id_from(environ, trust_proxy: bool) -> str:
    if trust_proxy:
        offered = environ.get("HTTP_X_REQUEST_ID", "")
        if _SANE_REQUEST_ID.fullmatch(offered):
            return offered
    return token_bytes(16).hex()  # 128 random bits, as 32 hex digits (uuid4's hex, without its UUID)


class RequestObserver:
    """Outside Flask, so it also sees what middleware below it answers (413 on a large body)."""

    def __init__(self, wsgi_app, trust_proxy: bool):
        self.wsgi_app = wsgi_app
        self.trust_proxy = trust_proxy

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        rid = request_id_from(environ, self.trust_proxy)
        logs.request_id.set(rid)
        status = [500]

        def _start_response(status_line, headers, exc_info=None):
            status[0] = int(status_line[:3])
            # Only a name of its length can be X-Request-Id: the others are not lowered.
            headers = [(k, v) for k, v in headers if len(k) != _RID_LENGTH or k.lower() != "x-request-id"]
            headers.append(("X-Request-Id", rid))
            return start_response(status_line, headers, exc_info)

        def _finish():
            seconds = time.perf_counter() - started
            endpoint = environ.get(ENDPOINT_KEY) or "unmatched"
            try:
                metrics.request_done(endpoint, status[0], seconds)
                logs.request_done(
                    method=environ.get("REQUEST_METHOD", ""),
                    path=environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
                    status=status[0],
                    duration_ms=seconds * 1000,
                    client_id=environ.get(CLIENT_ID_KEY),
                    remote_addr=environ.get("REMOTE_ADDR"),
                )
            finally:
                logs.request_id.set(None)

        try:
            body = self.wsgi_app(environ, _start_response)
        except BaseException:
            _finish()
            raise
        answer = _body(body, _finish)
        next(answer)  # started, so that closing it unread runs its ``finally``
        return answer


def _body(body, finish):
    """The response body, calling ``finish`` once: when it is exhausted or closed, whichever is
    first. Its first value (None) is taken by the caller before the server sees it."""
    try:
        yield None
        for chunk in body:  # not ``yield from``, which would close the body a second time
            yield chunk
    finally:
        try:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        finally:
            finish()
