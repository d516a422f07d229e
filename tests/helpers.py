"""Test helpers that act like a person with a browser, a mailbox and an authenticator app."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import select

from idp.extensions import db
from idp.models import OutboxMail
from idp.services import totp

ISSUER = "http://idp.test"
REDIRECT_URI = "http://app.test/callback"
POST_LOGOUT_URI = "http://app.test/bye"


class FormParser(HTMLParser):
    """Collects forms (action, fields) and texts of elements with an id."""

    def __init__(self):
        super().__init__()
        self.forms: dict[str, dict] = {}
        self._form = None
        self.ids: dict[str, str] = {}
        self._stack: list[str | None] = []
        self.alert_texts: list[str] = []
        self._alert_depth = 0
        self.images: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action", ""), "fields": {}, "buttons": []}
            self.forms[a.get("id") or f"form{len(self.forms)}"] = self._form
        elif tag == "input" and self._form is not None and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                pass
            else:
                self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append((a.get("name"), a.get("value")))
        if tag == "img" and a.get("id"):
            self.images[a["id"]] = a.get("src", "")
        if tag not in ("input", "img", "br", "meta", "link"):
            self._stack.append(a.get("id"))
            if a.get("role") == "alert":
                self._alert_depth = len(self._stack)
                self.alert_texts.append("")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        if tag not in ("input", "img", "br", "meta", "link") and self._stack:
            if self._alert_depth == len(self._stack):
                self._alert_depth = 0
            self._stack.pop()

    def handle_data(self, data):
        for element_id in self._stack:
            if element_id:
                self.ids[element_id] = self.ids.get(element_id, "") + data
        if self._alert_depth:
            self.alert_texts[-1] += data


def parse(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def make_client(app, name="App", first_party=True, grant_types=("authorization_code", "refresh_token"), public=False, extra=()):
    args = ["clients", "create", "--name", name, "--json", "--redirect-uri", REDIRECT_URI,
            "--post-logout-redirect-uri", POST_LOGOUT_URI]
    for g in grant_types:
        args += ["--grant-type", g]
    if first_party:
        args.append("--first-party")
    if public:
        args.append("--public")
    args += list(extra)
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def make_account(app, email, password, name=""):
    result = app.test_cli_runner().invoke(args=["users", "create", "--email", email, "--password", password, "--name", name, "--json"])
    assert result.exit_code == 0, result.output
    return {"sub": json.loads(result.stdout)["sub"], "email": email, "password": password}


def last_mail(app, to: str) -> OutboxMail:
    with app.app_context():
        mail = db.session.scalar(select(OutboxMail).where(OutboxMail.recipient == to).order_by(OutboxMail.id.desc()).limit(1))
        assert mail is not None, f"no mail to {to}"
        db.session.expunge(mail)
        return mail


def mail_count(app, to: str) -> int:
    with app.app_context():
        return len(list(db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == to))))


def code_from_mail(app, to: str) -> str:
    match = re.search(r"\b(\d{6})\b", last_mail(app, to).text)
    assert match, "no code in the mail"
    return match.group(1)


def clock_step() -> int:
    from idp import clock

    return clock.timestamp() // 30


class Browser:
    """A person at the provider's pages: follows redirects within the provider,
    stops at the relying app's redirect URI."""

    def __init__(self, app):
        self.app = app
        self.http = app.test_client()
        self.page = None
        self.status = None
        self.url = None
        self.location = None
        self.totp_secret = None

    # -- navigation
    def get(self, url, follow=True):
        return self._go("GET", url, None, follow)

    def post(self, url, data, follow=True):
        return self._go("POST", url, data, follow)

    def _go(self, method, url, data, follow):
        response = self.http.open(url, method=method, data=data)
        while follow and response.status_code in (301, 302, 303) and self._internal(response.headers["Location"]):
            url = response.headers["Location"]
            response = self.http.get(url)
        self.status = response.status_code
        self.location = response.headers.get("Location")
        self.url = url
        self.response = response
        self.page = parse(response.get_data(as_text=True)) if response.mimetype == "text/html" else None
        return response

    def forget(self):
        """Close the browser: the provider's cookies are gone."""
        self.http = self.app.test_client()

    @staticmethod
    def _internal(location: str) -> bool:
        return location.startswith("/") or location.startswith(ISSUER)

    # -- the page
    @property
    def text(self) -> str:
        return self.response.get_data(as_text=True)

    @property
    def alert(self) -> str | None:
        return " ".join(t.strip() for t in self.page.alert_texts) if self.page and self.page.alert_texts else None

    @property
    def step_state(self) -> str | None:
        form = self.page.forms.get("step") if self.page else None
        return form["fields"].get("state") if form else None

    def submit(self, form_id="step", follow=True, **fields):
        form = self.page.forms[form_id]
        data = dict(form["fields"])
        data.update({k: v for k, v in fields.items() if v is not None})
        return self.post(form["action"] or self.url, data, follow)

    def action(self, action, follow=True):
        for form in self.page.forms.values():
            if ("action", action) in form["buttons"]:
                data = dict(form["fields"], action=action)
                return self.post(form["action"], data, follow)
        raise AssertionError(f"no button for action {action}")

    # -- OAuth
    def authorize(self, client_id, scope="openid profile email", **params):
        verifier, challenge = pkce_pair()
        self.verifier = verifier
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": "st-" + secrets.token_hex(4),
            "nonce": "n-" + secrets.token_hex(4),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        self.auth_request = query
        return self.get("/authorize?" + urlencode(query))

    def callback_params(self) -> dict:
        assert self.location and self.location.startswith(REDIRECT_URI), (self.status, self.location, self.alert)
        return {k: v[0] for k, v in parse_qs(urlsplit(self.location).query).items()}

    def sign_in(self, email, password, *, first_time=False):
        """Walk the steps from the e-mail page to the redirect back to the app."""
        self.submit(email=email)
        assert self.step_state == "password", (self.status, self.alert)
        self.submit(password=password)
        if first_time:
            assert self.step_state == "verify_email", (self.status, self.alert)
            self.submit(email=email)
            self.submit(email_code=code_from_mail(self.app, email))
            assert self.step_state == "totp_enroll", (self.status, self.alert)
            self.totp_secret = self.page.ids["totp-secret"].replace(" ", "").strip()
            self._last_counter = clock_step()
            self.submit(totp_code=totp.code_for(self.totp_secret, self._last_counter))
        else:
            assert self.step_state == "totp", (self.status, self.alert)
            self.submit(totp_code=self.next_totp())
        return self

    def next_totp(self) -> str:
        """A code the provider has not seen yet (codes are single use): the next
        time step within the accepted window of one step either side."""
        from idp import clock

        current = clock.timestamp() // 30
        counter = max(getattr(self, "_last_counter", current - 1) + 1, current - 1)
        assert counter <= current + 1, "no unused code left in this window: advance the clock"
        self._last_counter = counter
        return totp.code_for(self.totp_secret, counter)


def exchange_code(http, client, code, verifier, redirect_uri=REDIRECT_URI, auth="basic"):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    return token_request(http, client, data, auth)


def token_request(http, client, data, auth="basic"):
    headers = {}
    if auth == "basic":
        raw = f"{client['client_id']}:{client.get('client_secret', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    elif auth == "post":
        data = dict(data, client_id=client["client_id"], client_secret=client.get("client_secret", ""))
    elif auth == "none":
        data = dict(data, client_id=client["client_id"])
    return http.post("/token", data=data, headers=headers)


def basic(client) -> dict:
    raw = f"{client['client_id']}:{client.get('client_secret', '')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
