"""Demo bookkeeping portal: a relying party that signs people in through the identity provider."""

from .app import ConfigError, create_app

__all__ = ["ConfigError", "create_app"]
