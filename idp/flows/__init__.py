"""Stored step machines: a Flow row and one `advance()` that refuses illegal steps."""

from .base import Context, FlowMachine
from .login import LoginFlow

__all__ = ["Context", "FlowMachine", "LoginFlow"]
