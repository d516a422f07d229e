"""The OAuth 2 / OpenID Connect server: Authlib's server, our grants and storage."""

from .server import authorization, init_oauth, require_oauth

__all__ = ["authorization", "init_oauth", "require_oauth"]
