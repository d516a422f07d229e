"""Log lines for operators: one per request, one per security event, JSON with IDP_LOG_FORMAT=json.

Every line written while a request is handled carries its request id (a logging filter
reads it from a context variable the request middleware sets).
"""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("idp_request_id", default=None)

request_log = logging.getLogger("idp.request")
audit_log = logging.getLogger("idp.audit")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (pytest swaps it per test)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure(log_format: str) -> None:
    """Install the JSON handler on the root logger (text keeps today's basicConfig line)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        # Ours from an earlier app in this process, and a plain basicConfig handler,
        # would write every line a second time.
        if getattr(handler, "idp_handler", False) or (log_format == "json" and type(handler) is logging.StreamHandler):
            root.removeHandler(handler)
    if log_format != "json":
        return
    handler = _StderrHandler()
    handler.idp_handler = True
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def request_done(*, method: str, path: str, status: int, duration_ms: float, client_id: str | None,
                 remote_addr: str | None) -> None:
    request_log.info(
        "%s %s %s %.1fms", method, path, status, duration_ms,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_ms, 2),
            "client_id": client_id,
            "remote_addr": remote_addr,
        },
    )


def security_event(*, action: str, outcome: str, actor: str | None, subject: str | None, ip: str | None,
                   reason: str | None) -> None:
    # Only who, what and where: the event's detail may hold things that are not for logs.
    audit_log.info(
        "audit %s %s", action, outcome,
        extra={"action": action, "outcome": outcome, "actor": actor, "subject": subject, "ip": ip, "reason": reason},
    )
