"""Prometheus metrics of the provider: what they count (web.scrape makes the text /metrics answers).

Under `idp serve` every worker (and the mail loop beside them) writes its samples to
files in PROMETHEUS_MULTIPROC_DIR and a scrape sums them; without that variable (tests,
`flask run`) the counts live in this process only.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, values

# The *_created series double the text of every scrape for nothing Prometheus needs.
disable_created_metrics()

# Every metric carries a label: a labelled metric creates its storage on first use, so
# metrics defined before `idp serve` switches to multiprocess mode still write to files.
REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "idp_http_requests", "HTTP requests answered, by endpoint and status.", ["endpoint", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "idp_http_request_duration_seconds",
    "Time from the request's arrival to its response, by endpoint.",
    ["endpoint"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TOKENS_ISSUED = Counter("idp_tokens_issued", "Successful token responses, by grant type.", ["grant_type"], registry=REGISTRY)
SIGN_INS = Counter(
    "idp_sign_ins",
    "Sign-in steps by outcome: success (a session started), failure (a wrong password, code or passkey), throttled.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
LOCKOUTS = Counter("idp_lockouts", "Locks after too many failures: of an account (authenticator codes), of a connector user from one client and address, or of a sign-in source (wrong passwords of an address from one browser or network).", ["kind"], registry=REGISTRY)
SECURITY_EVENTS = Counter(
    "idp_security_events", "Audit-trail events, by action and outcome.", ["action", "outcome"], registry=REGISTRY
)
MAILS = Counter("idp_mails", "Mail queued, sent and failed (a failed try that will be retried or abandoned).",
                ["event", "kind"], registry=REGISTRY)
BACKCHANNEL_DELIVERIES = Counter(
    "idp_backchannel_deliveries", "Back-channel logout tries, by outcome: delivered, failed (a try that is retried or abandoned), abandoned.", ["outcome"],
    registry=REGISTRY,
)

SQLITE_WAL_PAGES = Gauge(
    "idp_sqlite_wal_pages", "SQLite's WAL at the last pass of idp serve's checkpoint loop: its pages (state=written) and those of them not copied back into the database file yet (state=not_checkpointed). Pages that are never copied back (a reader that keeps an old snapshot open) make the WAL grow without end.",
    ["state"], multiprocess_mode="mostrecent", registry=REGISTRY,  # whichever worker ran the last pass
)

GRANT_TYPES = frozenset({
    "authorization_code", "refresh_token", "client_credentials", "password",
    "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange",
})
# Audit actions that are a sign-in step, and the kind of sign-in they are.
_SIGN_IN_ACTIONS = {
    "login.password": "password",
    "login.totp": "totp",
    "login.passkey": "passkey",
    "login.throttled": "password",
    "login.success": "session",
    "connector.login": "connector",
}
_LOCKOUT_ACTIONS = {"account.locked": "account", "connector.locked": "connector", "sign_in.locked": "sign_in"}


def enable_multiprocess(directory: str) -> None:
    """Make this process and the workers it forks write samples to ``directory``."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.get_value_class()


# A metric's child per label values, as ``labels()`` returns it, without its lock and checks
# on every request. The children belong to the value class they were made with: when it
# changes (multiprocess mode switched on), they are asked for anew.
_children: dict = {}
_children_class = [None]


def _child(metric, *labels):
    if _children_class[0] is not values.ValueClass:
        _children.clear()
        _children_class[0] = values.ValueClass
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def security_event(action: str, outcome: str) -> None:
    _child(SECURITY_EVENTS, action, outcome).inc()
    if action in _SIGN_IN_ACTIONS:
        result = "throttled" if action == "login.throttled" else ("success" if outcome == "success" else "failure")
        _child(SIGN_INS, _SIGN_IN_ACTIONS[action], result).inc()
    if action in _LOCKOUT_ACTIONS:
        _child(LOCKOUTS, _LOCKOUT_ACTIONS[action]).inc()


def mail(event: str, kind: str) -> None:
    """``event`` is queued, sent or failed."""
    _child(MAILS, event, kind).inc()


def sqlite_wal(pages: int, copied: int) -> None:
    """What a pass of the checkpoint loop found in the WAL and copied back of it."""
    _child(SQLITE_WAL_PAGES, "written").set(pages)
    _child(SQLITE_WAL_PAGES, "not_checkpointed").set(pages - copied)


def token_issued(grant_type: str | None) -> None:
    _child(TOKENS_ISSUED, grant_type if grant_type in GRANT_TYPES else "other").inc()


def request_done(endpoint: str, status: int, seconds: float) -> None:
    key = ("request", endpoint, status)  # the pair of children a request counts in, found at once
    children = _children.get(key) if _children_class[0] is values.ValueClass else None
    if children is None:
        children = (_child(REQUESTS, endpoint, str(status)), _child(LATENCY, endpoint))
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)
