"""A serving worker writes a request's log line without the logging module's record
(telemetry.logs._DirectLines): the same bytes as the logging module makes, in both formats, and the
record again as soon as anything else would see it."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from idp.telemetry import logs

REQUESTS = [
    dict(method="POST", path="/token", status=200, duration_ms=1.23456, client_id="c-1", remote_addr="127.0.0.1"),
    dict(method="GET", path="/t\u00f6k\"en\\x", status=404, duration_ms=0.049, client_id=None, remote_addr=None),
    dict(method="POST", path="/introspect", status=503, duration_ms=12345.678, client_id="\u00e9", remote_addr="::1"),
]


class Stream(logs.BatchedStream):
    """A BatchedStream whose lines stay in memory, so that a test can read them at once."""

    def __init__(self):
        self.lines = io.StringIO()

    def write(self, text):
        return self.lines.write(text)

    def flush(self):
        pass


@pytest.fixture
def worker(monkeypatch):
    """The root logger and standard error as a serving worker has them, in the format asked."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "filters", [])
    monkeypatch.setattr(logs, "_direct", [None])
    stream = Stream()

    def install(log_format):
        monkeypatch.setattr(root, "handlers", [])  # pytest's own capture would see every record
        monkeypatch.setattr(sys, "stderr", io.StringIO())
        logs.configure(log_format)
        if log_format == "text":
            logging.basicConfig(level=logging.INFO, format=logs.TEXT_FORMAT)
        logs.write_to(stream)
        return stream

    root_level = root.level
    yield install
    root.setLevel(root_level)


def both_ways(stream, monkeypatch, request_id):
    """The lines of REQUESTS written directly, and the same written by the logging module."""
    monkeypatch.setattr("time.time", lambda: 1765000000.0429)
    token = logs.request_id.set(request_id)
    try:
        for request in REQUESTS:
            logs.request_done(**request)
        direct = stream.lines.getvalue()
        stream.lines = io.StringIO()
        monkeypatch.setattr(logs, "_direct_line", lambda: None)
        for request in REQUESTS:
            logs.request_done(**request)
        through_logging = stream.lines.getvalue()
    finally:
        logs.request_id.reset(token)
    return direct, through_logging


@pytest.mark.parametrize("request_id", ["f" * 32, None])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_direct_lines_are_the_logging_modules_lines(worker, monkeypatch, log_format, request_id):
    stream = worker(log_format)
    assert logs._direct_line() is not None, "a serving worker's request lines are written directly"
    direct, through_logging = both_ways(stream, monkeypatch, request_id)
    assert direct == through_logging
    assert len(direct.splitlines()) == len(REQUESTS)
    if log_format == "json":
        assert [json.loads(line)["path"] for line in direct.splitlines()] == [r["path"] for r in REQUESTS]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_anything_else_that_would_see_the_record_gets_it(worker, monkeypatch, log_format):
    worker(log_format)
    root = logging.getLogger()
    seen = []

    class Capture(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    capture = Capture()
    root.addHandler(capture)
    try:
        assert logs._direct_line() is None
        logs.request_done(**REQUESTS[0])
    finally:
        root.removeHandler(capture)
    assert seen == ["POST /token 200 1.2ms"]
    assert logs._direct_line() is not None

    monkeypatch.setattr(logs.request_log, "level", logging.WARNING)
    logs.request_log.manager._clear_cache()
    try:
        assert logs._direct_line() is None, "a request logger turned down writes no line"
    finally:
        monkeypatch.undo()


def test_outside_a_serving_worker_the_logging_module_writes(monkeypatch):
    monkeypatch.setattr(logs, "_direct", [None])
    assert logs._direct_line() is None
