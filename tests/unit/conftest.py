"""Unit fixtures: services and flows called without a request, at a frozen clock."""

from __future__ import annotations

import pytest

from idp import clock
from idp.extensions import db
from idp.services import accounts
from tests.helpers import T0


@pytest.fixture
def ctx(app):
    """An app context with the clock frozen at T0 (a test moves it with clock.advance)."""
    clock.freeze(T0)
    with app.test_request_context():
        yield
    clock.freeze(None)


@pytest.fixture
def account(ctx):
    a = accounts.create_account("Anna@Example.com", "secret password", name="Anna")
    db.session.commit()
    return a
