"""A locked account stays locked on every path: no sign-in through the 2FA reset."""

from __future__ import annotations

from idp import clock
from idp.services import totp
from tests.helpers import signed_in_browser


def test_locked_account_cannot_sign_in_through_2fa_reset(app, browser, portal, person):

    b = signed_in_browser(browser, portal, person)
    b.forget()
    clock.advance(seconds=30)
    b.authorize(portal["client_id"])
    b.submit(email=person["email"])
    b.submit(password=person["password"])
    for _ in range(5):
        b.submit(totp_code="000000")
    assert b.status == 423
    b.get(b.url + "/reset-2fa")
    b.submit(email=person["email"])
    from tests.helpers import code_from_mail

    b.submit(email_code=code_from_mail(app, person["email"]))
    secret = b.page.ids["totp-secret"].replace(" ", "").strip() if b.page and "totp-secret" in b.page.ids else None
    if secret:
        b.submit(totp_code=totp.code_for(secret))
    assert b.status == 423 and b.location is None
