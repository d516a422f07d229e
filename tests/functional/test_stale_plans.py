"""A migration that changes the type of a column the running server reads (a longer VARCHAR) while
it runs: PostgreSQL then refuses every statement psycopg had prepared on a connection that returns
the column ("cached plan must not change result type"), on that connection, for good. Such a
connection counts as lost: a read outside a transaction is tried again on a new connection, a
request in the session's transaction gets the 503 of a database away at most once per connection,
and the connections after it answer. Never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from idp.extensions import db
from idp.unit_of_work import _stale_plan

from tests.helpers import introspect, tokens_for

# More than psycopg's prepare threshold (5): the statements are prepared on their connections.
PREPARED_AFTER = 8


def _alter(db_url: str, sql: str) -> None:
    """Run ``sql`` as a migration would: in a session of its own, not on the app's connections."""
    migration = create_engine(db_url, poolclass=NullPool)
    try:
        with migration.begin() as connection:
            connection.exec_driver_sql(sql)
    finally:
        migration.dispose()


@pytest.fixture
def scope_widened(app, db_url):
    """The tokens' scope column a VARCHAR(600) (500 in the models) for the test, as a migration
    under the running server would make it; set back after it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's prepared statements")
    yield lambda: _alter(db_url, "ALTER TABLE tokens ALTER COLUMN scope TYPE varchar(600)")
    _alter(db_url, "ALTER TABLE tokens ALTER COLUMN scope TYPE varchar(500)")


def test_a_column_type_changed_under_the_running_server_costs_at_most_one_503_a_connection(
        app, signed_in, portal, scope_widened):
    body = tokens_for(signed_in, portal)
    http = app.test_client()
    bearer = {"Authorization": "Bearer " + body["access_token"]}
    for _ in range(PREPARED_AFTER):
        assert introspect(http, portal, body["access_token"])["active"] is True  # a kept connection's read
        assert http.get("/userinfo", headers=bearer).status_code == 200  # the session's statements

    with app.app_context():
        engine = db.engine
    stale = []
    event.listen(engine, "handle_error", lambda context: stale.append(_stale_plan(context.original_exception)))

    scope_widened()

    answers = [http.get("/userinfo", headers=bearer) for _ in range(3)]
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 503} and statuses.count(503) <= 1 and statuses[-1] == 200, statuses
    assert any(stale), "no statement met a stale prepared statement: the test tested nothing"
    for answer in answers:
        if answer.status_code == 503:
            assert answer.get_json()["error"] == "temporarily_unavailable"
    assert introspect(http, portal, body["access_token"])["active"] is True  # read again on a new connection
    for _ in range(PREPARED_AFTER):
        assert introspect(http, portal, body["access_token"])["active"] is True
        assert http.get("/userinfo", headers=bearer).status_code == 200
