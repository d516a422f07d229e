"""Who is asking: the client address, the request facts a flow step needs, the per-IP sign-in limit."""

from __future__ import annotations

from flask import current_app, request

from ..flows import Context


def login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_PER_IP"]


def client_ip() -> str | None:
    return request.remote_addr


def context() -> Context:
    from . import devices
    from .i18n import current_locale

    device_id, device_accounts = devices.current()
    return Context(ip=client_ip(), user_agent=request.headers.get("User-Agent"), locale=current_locale(),
                   device_id=device_id, device_accounts=device_accounts)
