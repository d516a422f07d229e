"""Demo bank connector: signs in as an administration's connector user with the password grant."""

from .connector import ConfigError, ConnectorError, Settings, load_settings, main

__all__ = ["ConfigError", "ConnectorError", "Settings", "load_settings", "main"]
