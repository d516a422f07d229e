"""Pushed authorization requests (RFC 9126): the endpoint where a client pushes its
authorization request over the back channel (authenticated as at /token), and the
/authorize side, where the request_uri it got stands for the pushed parameters, once."""

from __future__ import annotations

from dataclasses import dataclass, field

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import EndpointRequest
from authlib.oauth2.rfc6749.endpoint import Endpoint
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc9101.errors import InvalidRequestUriError
from authlib.consts import default_json_headers

from ..services import pushed_requests
from . import checks, dpop
from .supported import ANY_AUTH_METHODS

REQUEST_URI_PREFIX = pushed_requests.REQUEST_URI_PREFIX
# Client authentication travels with the push; it is no authorization parameter.
CLIENT_AUTH_PARAMS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


class Pushed(dict):
    """Authorization parameters that came over the back channel (at /par, or kept from
    there by a sign-in flow): Authlib's request is built from them, not from the URL."""


@dataclass
class PushRequest(EndpointRequest):
    params: dict = field(default_factory=dict)


class PushedAuthorizationEndpoint(Endpoint):
    ENDPOINT_NAME = "pushed_authorization"
    CLIENT_AUTH_METHODS = ANY_AUTH_METHODS

    def validate_request(self, request) -> PushRequest:
        client = self.server.authenticate_client(request, self.CLIENT_AUTH_METHODS, self.ENDPOINT_NAME)
        params = self._params(request, client)
        try:
            # Checked as /authorize checks it (section 2.1), answered here rather than at
            # the client's redirect URI.
            grant = self.server.get_consent_grant(request=Pushed(params), end_user=None)
            checks.run(params, grant)
        except OAuth2Error as err:
            err.redirect_uri = err.state = None
            raise
        return PushRequest(request=request, client=client, params=params)

    @staticmethod
    def _params(request, client) -> dict:
        # A parameter sent twice was refused before (web/guards.py), as at /token.
        params = {k: v for k, v in request.form.items() if k not in CLIENT_AUTH_PARAMS}
        if params.setdefault("client_id", client.id) != client.id:
            raise InvalidRequestError("The 'client_id' is not the authenticated client's.")
        if "request_uri" in params:
            raise InvalidRequestError("A pushed request cannot carry a 'request_uri'.")
        # A proof here binds the code to its key, as 'dpop_jkt' does (RFC 9449 section 10.1).
        jkt = dpop.at_authorization_server(request)
        if jkt is not None:
            if params.setdefault("dpop_jkt", jkt) != jkt:
                raise dpop.InvalidDPoPProof("The DPoP proof's key is not the one 'dpop_jkt' names.")
        return params

    def create_response(self, validated):
        request_uri, lifetime = pushed_requests.push(validated.client.id, validated.params)
        return 201, {"request_uri": request_uri, "expires_in": lifetime}, default_json_headers


class PushedRequests:
    """The /authorize side (an extension of the authorization server): a PAR request_uri is
    replaced by the parameters pushed, and only those (section 4); a client registered to
    require PAR is refused any other request. Other request_uris are left for the checks,
    which refuse them."""

    def __call__(self, server):
        server.register_hook("before_get_authorization_grant", self.resolve)

    @staticmethod
    def resolve(server, request) -> None:
        if request.pushed:
            return
        request_uri = request.payload.data.get("request_uri")
        client = server.query_client(request.payload.client_id)
        if isinstance(request_uri, str) and request_uri.startswith(REQUEST_URI_PREFIX):
            params = pushed_requests.redeem(request_uri, client.id) if client is not None else None
            if params is None:
                raise InvalidRequestUriError("The 'request_uri' is unknown, expired or used already.")
            request.payload = BasicOAuth2Payload(params)
            request.pushed = True
        elif client is not None and client.require_par:
            raise InvalidRequestError("This client must push its authorization requests (PAR) first.")
