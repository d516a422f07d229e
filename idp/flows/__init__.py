"""Stored step machines: a Flow row and one `advance()` that refuses illegal steps."""

from .base import Context, FlowMachine
from .connector import ConnectorResetFlow
from .email_change import EmailChangeFlow
from .invitation import InvitationFlow
from .login import LoginFlow
from .passkey_registration import PasskeyRegistrationFlow
from .signup import SignupFlow

__all__ = ["ConnectorResetFlow", "Context", "EmailChangeFlow", "FlowMachine", "InvitationFlow", "LoginFlow",
           "PasskeyRegistrationFlow", "SignupFlow"]
