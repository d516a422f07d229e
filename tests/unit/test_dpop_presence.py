"""A token or PAR request without a DPoP header has no proof to check (oauth/dpop.py
``at_authorization_server``): None, before the nonce policy is looked up; any DPoP header, an
empty one too, is a proof to check."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import EnvironHeaders

from idp.oauth import dpop
from idp.web.lean import _Headers


class _Request:
    method = "POST"
    uri = "http://idp.test/token"

    def __init__(self, headers):
        self.headers = headers


@pytest.mark.parametrize("kind", [EnvironHeaders, _Headers])
def test_no_header_no_proof(app, kind):
    with app.app_context():
        del app.config["DPOP_NONCE_REQUIRED"]  # not asked for
        assert dpop.at_authorization_server(_Request(kind({"CONTENT_TYPE": "application/x-www-form-urlencoded"}))) is None


@pytest.mark.parametrize("kind", [EnvironHeaders, _Headers])
@pytest.mark.parametrize("value", ["", "not.a.jws", "a.b"])
def test_any_header_is_a_proof_to_check(app, kind, value):
    with app.app_context(), pytest.raises(dpop.InvalidDPoPProof):
        dpop.at_authorization_server(_Request(kind({"HTTP_DPOP": value})))
