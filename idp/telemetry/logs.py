"""Log lines for operators: one per request, one per security event, JSON with IDP_LOG_FORMAT=json.

Every line written while a request is handled carries its request id (a logging filter
reads it from a context variable the request middleware sets).
"""

from __future__ import annotations

import collections
import contextvars
import json
import logging
import os
import sys
import threading
import time

from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("idp_request_id", default=None)

# The line of IDP_LOG_FORMAT=text (logging.basicConfig's handler, installed by create_app).
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

request_log = logging.getLogger("idp.request")
# A request's line: method, path, status, duration.
_REQUEST_LINE = "%s %s %s %.1fms"
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


# How long a line written by a serving worker may wait before it reaches standard error.
BATCH_SECONDS = 0.02


class BatchedStream:
    """Standard error of a serving worker: what is written is handed to a thread of its own, which
    writes all that came in one system call every BATCH_SECONDS.

    A line written straight to standard error costs a write call under the logging handler's lock,
    one per line; here a line costs an append, and a batch one write. The thread ends after the worker's main thread (the server stopped it) and
    writes what is left first; ``flush`` writes at once when the thread is gone. A worker killed
    outright loses at most the last BATCH_SECONDS of lines."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending: collections.deque[str] = collections.deque()
        self._writing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="log writer")
        self._thread.start()

    def write(self, text: str) -> int:
        self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        if not self._thread.is_alive():
            self.drain()

    def drain(self, timeout: float = -1) -> None:
        """Write what is pending; with a ``timeout``, nothing if a write under way (to a stalled
        reader) holds the stream that long."""
        if not self._writing.acquire(timeout=timeout):
            return
        try:
            # deque.popleft is atomic: a line appended meanwhile is written now or in the next round.
            parts = [self._pending.popleft() for _ in range(len(self._pending))]
            if not parts:
                return
            data = memoryview("".join(parts).encode(self.encoding, self.errors))
            try:
                while data:
                    data = data[os.write(self._fd, data):]
            except OSError:
                pass  # standard error closed: nothing can be told
        finally:
            self._writing.release()

    def _run(self) -> None:
        main = threading.main_thread()
        while main.is_alive():
            main.join(BATCH_SECONDS)
            self.drain()
        self.drain()

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def write_in_batches() -> None:
    """In a serving worker, once forked: standard error, and the log handlers writing to it, go
    through a BatchedStream."""
    if isinstance(sys.stderr, BatchedStream):
        return
    try:
        sys.stderr.flush()
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's capture): left as it is
    write_to(BatchedStream(fd))


def write_pending(timeout: float) -> None:
    """Write at once what standard error holds back (a BatchedStream), as a process about to end
    by ``os._exit`` must: its thread would not get to it. Within ``timeout`` seconds: a write of
    that thread's to a reader that no longer reads would hold it for ever."""
    if isinstance(sys.stderr, BatchedStream):
        sys.stderr.drain(timeout)


def write_to(stream: BatchedStream) -> None:
    """Standard error becomes ``stream``, for the handlers writing to it too; a request's line is
    then written directly when the one handler is idp's own."""
    previous = sys.stderr
    sys.stderr = stream
    handlers = logging.getLogger().handlers
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, _StderrHandler) \
                and handler.stream in (previous, sys.__stderr__):
            handler.setStream(stream)
    _direct[0] = _direct_lines_for(handlers[0]) if len(handlers) == 1 else None


def _direct_lines_for(handler: logging.Handler) -> _DirectLines | None:
    """Lines made directly for this handler, if it is one of the two idp installs as they are."""
    formatter = handler.formatter
    if formatter is None or formatter.converter is not time.localtime or formatter.datefmt is not None:
        return None
    if isinstance(handler, _StderrHandler) and type(formatter) is JsonFormatter:
        return _DirectLines(handler, "json")
    if type(handler) is logging.StreamHandler and type(formatter) is logging.Formatter \
            and formatter._fmt == TEXT_FORMAT and handler.stream is sys.stderr:
        return _DirectLines(handler, "text")
    return None


class _DirectLines:
    """A request's log line made and written as the one handler of a serving worker would, without
    a LogRecord: the logging module's record, filters and handler cost a quarter of the token
    endpoint's throughput under granian, a plain write to the BatchedStream almost nothing.

    Only where nothing else would see the record: the request logger and the root as
    ``configure`` and ``write_in_batches`` left them (no other handler, filter or level, the
    handler's own formatter untouched), checked at every line, so a handler added later (a test's
    capture, an operator's) gets the record again. tests/unit/test_request_log_lines.py holds
    both ways to the same bytes."""

    def __init__(self, handler: logging.Handler, kind: str) -> None:
        self.handler = handler
        self.formatter = handler.formatter
        self.kind = kind
        self._second: tuple[int, str] = (-1, "")

    def usable(self) -> bool:
        root = logging.root
        handler = self.handler
        return (
            len(root.handlers) == 1 and root.handlers[0] is handler and handler.formatter is self.formatter
            and not root.filters and not request_log.handlers and not request_log.filters
            and request_log.propagate and not request_log.disabled and handler.level <= logging.INFO
            and len(handler.filters) == (1 if self.kind == "json" else 0)
            and request_log.isEnabledFor(logging.INFO)
        )

    def _asctime(self, now: float) -> str:
        # logging.Formatter.formatTime: local time to the second, then ",mmm"
        second = int(now)
        kept = self._second
        if kept[0] != second:
            kept = self._second = (second, time.strftime(self.formatter.default_time_format, time.localtime(now)))
        return self.formatter.default_msec_format % (kept[1], int((now - second) * 1000))

    def write(self, message: str, fields: dict) -> None:
        """The line of a record of ``message`` with ``fields`` as its extra attributes."""
        asctime = self._asctime(time.time())
        if self.kind == "text":
            line = f"{asctime} INFO {request_log.name}: {message}\n"
        else:
            entry = {"time": asctime, "level": "INFO", "logger": request_log.name, "message": message, **fields}
            rid = request_id.get()
            if rid is not None:
                entry["request_id"] = rid  # as RequestIdFilter adds it
            line = json.dumps(entry) + "\n"
        sys.stderr.write(line)


_direct: list[_DirectLines | None] = [None]


def _direct_line() -> _DirectLines | None:
    direct = _direct[0]
    if direct is None or not isinstance(sys.stderr, BatchedStream) or not direct.usable():
        return None
    return direct


def request_done(*, method: str, path: str, status: int, duration_ms: float, client_id: str | None,
                 remote_addr: str | None) -> None:
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 2),
        "client_id": client_id,
        "remote_addr": remote_addr,
    }
    direct = _direct_line()
    if direct is not None:
        direct.write(_REQUEST_LINE % (method, path, status, duration_ms), fields)
        return
    request_log.info(_REQUEST_LINE, method, path, status, duration_ms, extra=fields)


def security_event(*, action: str, outcome: str, actor: str | None, subject: str | None, ip: str | None,
                   reason: str | None) -> None:
    # Only who, what and where: the event's detail may hold things that are not for logs.
    audit_log.info(
        "audit %s %s", action, outcome,
        extra={"action": action, "outcome": outcome, "actor": actor, "subject": subject, "ip": ip, "reason": reason},
    )
