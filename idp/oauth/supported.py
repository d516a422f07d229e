"""What the provider supports, in one place: the discovery document and the behaviour
(the registered grants and endpoints, the authorize checks) are both read from here."""

from __future__ import annotations

from ..models.oauth import ACR_MFA, ACR_PHISHING_RESISTANT

SCOPES = ["openid", "profile", "email", "offline_access", "administrations"]
# Scopes about a person: meaningless in a token that no person granted.
PERSONAL_SCOPES = frozenset(SCOPES)
CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "acr", "amr", "at_hash",
          "name", "email", "email_verified", "administrations"]
RESPONSE_MODES = ["query", "form_post"]
# `select_account` is accepted and means nothing here: a browser holds one SSO session.
PROMPTS = ["consent", "login", "none"]
PROMPTS_ACCEPTED = frozenset(PROMPTS) | {"select_account"}
CODE_CHALLENGE_METHODS = ["S256"]
ID_TOKEN_ALGORITHMS = ["RS256"]
# DPoP proofs (RFC 9449): asymmetric algorithms only, a proof shows possession of a private key.
DPOP_ALGORITHMS = ["ES256", "ES384", "PS256", "RS256"]

SECRET_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
CONFIDENTIAL_AUTH_METHODS = SECRET_AUTH_METHODS + ["private_key_jwt"]
ANY_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS + ["none"]

# Longest `nonce` taken at /authorize: it is stored with the code and echoed in the ID token.
NONCE_MAX_LENGTH = 500

# Authentication context: what the sign-in behind a token proved, named in the ID token's
# `acr` (whatever `acr_values` asked: they are voluntary, and the claim says what happened).
# REFEDS MFA: a password and a second factor (TOTP or a passkey), or a passkey with user
# verification; `phr` (OpenID Connect EAP ACR Values): a sign-in that used a passkey. A
# passkey sign-in meets both and the ID token names the one the client preferred.
ACR_VALUES = [ACR_MFA, ACR_PHISHING_RESISTANT]
