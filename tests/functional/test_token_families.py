"""Token families: once a code or a refresh token has been used twice, nothing its family
issued works, whichever request won a race and whenever it saved its tokens; a refused
refresh leaves its token usable; a sign-in session that ends takes its tokens along."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from idp import clock
from tests.helpers import at_once, basic, exchange_code, token_request

FULL = "openid profile email offline_access administrations"


def _signed_in(browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.authorize(portal["client_id"], scope=FULL)
    browser.sign_in(person["email"], person["password"], first_time=True)
    return browser


def _race(app, n, call):
    """``n`` requests released at once; (status, body) of each, in completion order."""
    def one():
        response = call(app.test_client())
        return response.status_code, response.get_json()

    return at_once(n, one)


def _nothing_works(app, portal, issued):
    http = app.test_client()
    for body in issued:
        seen = http.post("/introspect", data={"token": body["access_token"]}, headers=basic(portal)).get_json()
        assert seen == {"active": False}, seen
        assert http.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).status_code == 401
        if body.get("refresh_token"):
            again = token_request(http, portal, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
            assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("n", [2, 10, 50])
def test_racing_refreshes_leave_no_token_of_the_family_working(app, browser, portal, person, n):
    b = _signed_in(browser, portal, person)
    first = exchange_code(b.http, portal, b.callback_params()["code"], b.verifier).get_json()
    results = _race(app, n, lambda http: token_request(
        http, portal, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1 and statuses.count(400) == n - 1, statuses
    assert all(body["error"] == "invalid_grant" for status, body in results if status == 400)
    winner = next(body for status, body in results if status == 200)
    _nothing_works(app, portal, [first, winner])


@pytest.mark.parametrize("n", [2, 10, 50])
def test_racing_code_redemptions_leave_no_token_working(app, browser, portal, person, n):
    b = _signed_in(browser, portal, person)
    code = b.callback_params()["code"]
    results = _race(app, n, lambda http: exchange_code(http, portal, code, b.verifier))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1 and statuses.count(400) == n - 1, statuses
    winner = next(body for status, body in results if status == 200)
    _nothing_works(app, portal, [winner])


@pytest.fixture
def signed_in(browser, portal, person):
    return _signed_in(browser, portal, person)


def _tokens(browser, client, scope=FULL):
    browser.authorize(client["client_id"], scope=scope)
    response = exchange_code(browser.http, client, browser.callback_params()["code"], browser.verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _active(http, client, token) -> bool:
    return http.post("/introspect", data={"token": token}, headers=basic(client)).get_json()["active"]


def _refresh(http, client, token, **extra):
    return token_request(http, client, {"grant_type": "refresh_token", "refresh_token": token, **extra})


def test_a_refresh_refused_for_its_scope_leaves_the_token_usable(signed_in, portal):
    body = _tokens(signed_in, portal)
    refused = _refresh(signed_in.http, portal, body["refresh_token"], scope="openid admin:everything")
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_scope"
    retry = _refresh(signed_in.http, portal, body["refresh_token"])
    assert retry.status_code == 200, retry.get_json()
    assert _active(signed_in.http, portal, retry.get_json()["access_token"])


def test_a_replayed_refresh_token_revokes_the_family_saved_after_it(signed_in, portal):
    """Sequential reuse: the rotated-away token comes back after its successor was issued."""
    first = _tokens(signed_in, portal)
    second = _refresh(signed_in.http, portal, first["refresh_token"]).get_json()
    replay = _refresh(signed_in.http, portal, first["refresh_token"])
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert not _active(signed_in.http, portal, second["access_token"])
    assert _refresh(signed_in.http, portal, second["refresh_token"]).status_code == 400
def _logout(browser):
    browser.get("/logout")
    browser.submit()


def test_logout_ends_the_sessions_access_tokens(signed_in, portal):
    online = _tokens(signed_in, portal, scope="openid email")
    offline = _tokens(signed_in, portal, scope=FULL)
    _logout(signed_in)
    assert not _active(signed_in.http, portal, online["access_token"])
    assert not _active(signed_in.http, portal, offline["access_token"])
    # offline_access was granted: the refresh token outlives the sign-in session.
    assert _refresh(signed_in.http, portal, offline["refresh_token"]).status_code == 200


def test_a_new_sign_in_ends_the_previous_sessions_tokens(signed_in, portal, person):
    online = _tokens(signed_in, portal, scope="openid email")
    clock.freeze(dt.datetime(2026, 11, 23, 9, 5, 5))
    signed_in.authorize(portal["client_id"], prompt="login")
    signed_in.sign_in(person["email"], person["password"])
    fresh = exchange_code(signed_in.http, portal, signed_in.callback_params()["code"], signed_in.verifier).get_json()
    assert not _active(signed_in.http, portal, online["access_token"])
    assert _active(signed_in.http, portal, fresh["access_token"])


def test_a_code_redeemed_after_logout_brings_no_working_access_token(signed_in, portal):
    signed_in.authorize(portal["client_id"], scope="openid email")
    online_code, online_verifier = signed_in.callback_params()["code"], signed_in.verifier
    signed_in.authorize(portal["client_id"], scope=FULL)
    offline_code, offline_verifier = signed_in.callback_params()["code"], signed_in.verifier
    _logout(signed_in)
    online = exchange_code(signed_in.http, portal, online_code, online_verifier).get_json()
    offline = exchange_code(signed_in.http, portal, offline_code, offline_verifier).get_json()
    assert not _active(signed_in.http, portal, online["access_token"])
    assert not _active(signed_in.http, portal, offline["access_token"])
    assert _refresh(signed_in.http, portal, offline["refresh_token"]).status_code == 200


def _paused_before_saving_a_token(app, pause_thread, resume: threading.Event, reached: threading.Event):
    """Hold ``pause_thread`` just before it writes a token row, until ``resume`` is set or a
    second has passed: long enough for a racing request that is not held off to commit."""
    from sqlalchemy import event

    from idp.extensions import db

    with app.app_context():
        engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread() is pause_thread[0] and statement.lstrip().upper().startswith("INSERT INTO TOKENS"):
            reached.set()
            resume.wait(1.0)

    event.listen(engine, "before_cursor_execute", before)
    return lambda: event.remove(engine, "before_cursor_execute", before)


@pytest.mark.parametrize("scope", ["openid email", FULL])
def test_a_code_redeemed_at_the_moment_of_logout_brings_no_working_access_token(app, signed_in, portal, scope):
    """The exchange has read the session (still active) and is about to save its token when the
    logout commits: the token must end with the session all the same."""
    signed_in.authorize(portal["client_id"], scope=scope)
    code, verifier = signed_in.callback_params()["code"], signed_in.verifier
    signed_in.get("/logout")  # the confirmation page; the person presses the button below
    reached, logged_out, results = threading.Event(), threading.Event(), {}
    exchanger = [None]

    def exchange():
        results["tokens"] = exchange_code(app.test_client(), portal, code, verifier).get_json()

    def logout():
        reached.wait(10)
        signed_in.submit()
        results["logout"] = signed_in.status
        logged_out.set()

    exchanger[0] = threading.Thread(target=exchange)
    stop = _paused_before_saving_a_token(app, exchanger, logged_out, reached)
    try:
        threads = [exchanger[0], threading.Thread(target=logout)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        stop()
    assert reached.is_set() and results["logout"] in (200, 302, 303), results
    assert not _active(signed_in.http, portal, results["tokens"]["access_token"])
    if "refresh_token" in results["tokens"]:  # offline access outlives the session, as without the race
        assert _refresh(signed_in.http, portal, results["tokens"]["refresh_token"]).status_code == 200


def test_a_refresh_narrowed_to_an_online_scope_after_logout_brings_no_working_token(signed_in, portal):
    offline = _tokens(signed_in, portal, scope=FULL)
    _logout(signed_in)
    narrowed = _refresh(signed_in.http, portal, offline["refresh_token"], scope="openid email")
    assert narrowed.status_code == 200
    assert "offline_access" not in narrowed.get_json()["scope"].split()
    assert not _active(signed_in.http, portal, narrowed.get_json()["access_token"])


def _prune(app):
    """`idp db prune` as the operator runs it: the ended session's row goes at once."""
    from idp.services.prune import prune

    with app.app_context():
        assert prune()["sessions"] >= 1


def test_a_refresh_narrowed_to_an_online_scope_after_logout_and_prune_brings_no_working_token(app, signed_in, portal):
    offline = _tokens(signed_in, portal, scope=FULL)
    _logout(signed_in)
    _prune(app)
    narrowed = _refresh(signed_in.http, portal, offline["refresh_token"], scope="openid email")
    assert narrowed.status_code == 200
    assert not _active(signed_in.http, portal, narrowed.get_json()["access_token"])
    again = _refresh(signed_in.http, portal, narrowed.get_json()["refresh_token"])
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_a_code_redeemed_after_logout_and_prune_brings_no_working_access_token(app, signed_in, portal):
    signed_in.authorize(portal["client_id"], scope="openid email")
    online_code, online_verifier = signed_in.callback_params()["code"], signed_in.verifier
    signed_in.authorize(portal["client_id"], scope=FULL)
    offline_code, offline_verifier = signed_in.callback_params()["code"], signed_in.verifier
    _logout(signed_in)
    _prune(app)
    online = exchange_code(signed_in.http, portal, online_code, online_verifier).get_json()
    offline = exchange_code(signed_in.http, portal, offline_code, offline_verifier).get_json()
    assert not _active(signed_in.http, portal, online["access_token"])
    assert signed_in.http.get("/userinfo", headers={"Authorization": "Bearer " + online["access_token"]}).status_code == 401
    assert not _active(signed_in.http, portal, offline["access_token"])
    assert _refresh(signed_in.http, portal, offline["refresh_token"]).status_code == 200


@pytest.mark.parametrize("pruned", [False, True])
def test_a_refresh_narrowed_to_an_online_scope_after_the_session_expired_brings_no_working_token(app, signed_in, portal,
                                                                                                  pruned):
    """The same answer whether or not the expired session's row has been pruned yet."""
    offline = _tokens(signed_in, portal, scope=FULL)
    clock.freeze(dt.datetime(2026, 11, 23, 21, 0, 6))  # past SESSION_LIFETIME (12 h)
    if pruned:
        _prune(app)
    narrowed = _refresh(signed_in.http, portal, offline["refresh_token"], scope="openid email")
    assert narrowed.status_code == 200
    assert not _active(signed_in.http, portal, narrowed.get_json()["access_token"])
