"""The request observer's body (ops/requests.py): the request is finished once, whether its
answer is read to the end, closed unread or closed half read, and the body it wraps is closed."""

from __future__ import annotations

from idp.ops.requests import RequestObserver


class _Closing(list):
    closed = 0

    def close(self):
        self.closed += 1


def _observed(chunks):
    body = _Closing(chunks)
    observer = RequestObserver(lambda environ, start_response: body, trust_proxy=False)
    answer = observer({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: None)
    return answer, body


def _finishes(monkeypatch):
    calls = []
    monkeypatch.setattr("idp.ops.requests.metrics.request_done", lambda *a: calls.append(a))
    return calls


def test_a_body_read_to_the_end_finishes_once_and_is_closed(monkeypatch):
    calls = _finishes(monkeypatch)
    answer, body = _observed([b"a", b"b"])
    assert list(answer) == [b"a", b"b"]
    answer.close()
    assert len(calls) == 1 and body.closed == 1


def test_a_body_closed_unread_finishes_and_is_closed(monkeypatch):
    calls = _finishes(monkeypatch)
    answer, body = _observed([b"a"])
    answer.close()
    answer.close()
    assert len(calls) == 1 and body.closed == 1


def test_a_body_closed_half_read_finishes_once(monkeypatch):
    calls = _finishes(monkeypatch)
    answer, body = _observed([b"a", b"b"])
    assert next(iter(answer)) == b"a"
    assert not calls
    answer.close()
    assert len(calls) == 1 and body.closed == 1
