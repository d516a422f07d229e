"""Stored step machines: a Flow row and one `advance()` that refuses illegal steps."""

from .base import Context, FlowMachine
from .connector import ConnectorResetFlow
from .invitation import InvitationFlow
from .login import LoginFlow
from .signup import SignupFlow

__all__ = ["ConnectorResetFlow", "Context", "FlowMachine", "InvitationFlow", "LoginFlow", "SignupFlow"]
