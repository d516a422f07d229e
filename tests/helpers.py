"""Test helpers that act like a person with a browser, a mailbox and an authenticator app."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlencode, urlsplit

from flask.testing import FlaskCliRunner
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import select, update

from idp import clock
from idp.extensions import db
from idp.flows import Context
from idp.models import Account, OutboxMail
from idp.services import totp

from .forms import FormParser, parse  # noqa: F401 - the tests take them from here

ISSUER = "http://idp.test"
# The fixed morning the tests freeze the clock at, and the request context of unit tests.
T0 = dt.datetime(2026, 11, 23, 9, 0, 5)
CTX = Context(ip="127.0.0.1", locale="en")
REDIRECT_URI = "http://app.test/callback"
POST_LOGOUT_URI = "http://app.test/bye"


class CliRunner(FlaskCliRunner):
    """The `idp` command line (idp.cli.cli), run against a test's app: the app factory does
    not know the command line, which sits above it."""

    def __init__(self, app, **kwargs):
        # The command line's group marks the process as run from `flask`, which would make the
        # demo portal's app.run() a no-op in a subprocess started later: set only per command.
        super().__init__(app, env={"FLASK_RUN_FROM_CLI": None}, **kwargs)

    def invoke(self, cli=None, args=None, **kwargs):
        from idp.cli import cli as idp

        return super().invoke(cli or idp, args, **kwargs)


def load_script(path, name: str) -> ModuleType:
    """A script of the repository (bench/, scripts/), which is no package, loaded as the module
    ``name``: registered in ``sys.modules`` (dataclasses look their module up there), with its
    directory on ``sys.path`` while it loads, after everything else, for the siblings it imports."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    directory = str(Path(path).parent)
    sys.path.append(directory)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(directory)
    return module


def cli_runner(app) -> CliRunner:
    return CliRunner(app)


def run_idp(env_extra: dict, *args: str, tmp_path) -> subprocess.CompletedProcess:
    """`idp ARGS` in a process of its own, as an operator runs it: only the IDP_* settings given
    (development, the instance folder in ``tmp_path``), none of the test process's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({"IDP_INSTANCE_PATH": str(tmp_path), "IDP_ENV": "development", **env_extra})
    return subprocess.run([sys.executable, "-m", "idp.cli", *args], env=env, capture_output=True, text=True, timeout=60)


def sample(client, name: str, **labels) -> float:
    """The sum of the /metrics samples called ``name`` that carry ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200, response.status_code
    total = 0.0
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def at_once(n: int, call) -> list:
    """``call()`` in ``n`` threads released together; the results in the order they came."""
    import threading

    barrier, lock, results = threading.Barrier(n), threading.Lock(), []

    def run():
        barrier.wait(30)
        result = call()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert len(results) == n, f"{n - len(results)} of {n} racing calls did not finish"
    return results


class Beside:
    """``action()`` in a thread of its own beside the test, which holds rows it will wait for:
    started at once; ``result()`` waits for it and gives what it returned, or raises what it
    raised."""

    def __init__(self, action) -> None:
        import threading

        self._outcome: dict = {}
        self._thread = threading.Thread(target=self._run, args=(action,))
        self._thread.start()

    def _run(self, action) -> None:
        try:
            self._outcome["value"] = action()
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self._outcome["error"] = exc

    def join(self, seconds: float = 30) -> None:
        self._thread.join(seconds)

    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self):
        self.join()
        assert not self._thread.is_alive(), "it did not finish"
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]

    def __repr__(self) -> str:
        return f"Beside({'running' if self._thread.is_alive() else self._outcome!r})"


def interleaved(engine, hold, action, then, who: str):
    """Two sides that lock the same rows, played in a set order on ``engine``'s PostgreSQL: a
    transaction of the test's own runs ``hold(cursor)`` (the rows the other side takes first;
    what it returns is passed on), ``action`` starts beside it (``Beside``) and must come to wait
    for a lock, then ``then(cursor, held)`` takes the rows the other side takes next and the
    transaction commits. Returns what ``action`` returned, or raises what it raised (a
    deadlock's error, when the two take the rows in orders that cross)."""
    connection = engine.raw_connection()
    beside = None
    try:
        cursor = connection.cursor()
        held = hold(cursor)
        beside = Beside(action)
        assert waiting_for_a_lock(engine), f"{who} did not wait for the rows held: {beside!r}"
        then(cursor, held)
        cursor.close()
        connection.commit()
    finally:
        connection.close()
        if beside is not None:
            beside.join()
    return beside.result()


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
    result = cli_runner(app).invoke(args=args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def make_account(app, email, password, name=""):
    result = cli_runner(app).invoke(args=["users", "create", "--email", email, "--password", password, "--name", name, "--json"])
    assert result.exit_code == 0, result.output
    return {"sub": json.loads(result.stdout)["sub"], "email": email, "password": password}


def set_disabled(app, email, when):
    """Mark the account disabled at ``when`` (None: enabled again), without revoking its tokens."""
    with app.app_context():
        db.session.execute(update(Account).where(Account.email == email).values(disabled_at=when))
        db.session.commit()


def make_connector(app, owner_email="eigenaar@example.com", password="Bank-koppeling-99-Zon") -> dict:
    """An administration (its owner a new account) whose connector user has ``password``."""
    from idp.services import accounts, administrations, passwords

    with app.app_context():
        owner = accounts.create_account(owner_email, "correct horse battery staple", name="Eigenaar")
        administration = administrations.create_company("Bakkerij Jansen", owner)
        connector = administration.connector
        connector.password_hash = passwords.hash_password(password)
        db.session.commit()
        return {"username": connector.username, "administration": administration.id, "password": password,
                "owner": owner_email}


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
    match = re.search(r"^\s*(\d{6})\s*$", last_mail(app, to).text, re.M)  # the code stands on its own line
    assert match, "no code in the mail"
    return match.group(1)


def solve_captcha(browser, challenge_url="/login/challenge") -> str:
    """What the browser's CAPTCHA widget posts as ``altcha``: a solved fresh challenge. The
    library checks expiry against the real clock: tests frozen in the past set a long
    CAPTCHA_LIFETIME (and a cheap CAPTCHA_COST)."""
    import altcha

    parsed = altcha.Challenge.from_dict(browser.http.get(challenge_url).get_json())
    return altcha.Payload(parsed, altcha.solve_challenge(parsed, timeout=60)).to_base64()


def wrong_password(browser, password="wrong"):
    """A wrong password as a person gives it: with the CAPTCHA solved where the page asks for one."""
    captcha = solve_captcha(browser) if 'id="captcha"' in browser.text else None
    return browser.submit(password=password, altcha=captcha)


# Cheap proof of work that expires long after the tests' frozen morning (see solve_captcha).
CHEAP_CAPTCHA = {"CAPTCHA_MAX_NUMBER": 100, "CAPTCHA_COST": 10, "CAPTCHA_LIFETIME": 10 * 365 * 24 * 3600}


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
        # Empty alert regions (a script fills them) say nothing.
        texts = [t.strip() for t in self.page.alert_texts if t.strip()] if self.page else []
        return " ".join(texts) if texts else None

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

    def sign_in(self, email, password, *, first_time=False, email_verified=False):
        """Walk the steps from the e-mail page to the redirect back to the app. A first sign-in
        confirms the address with a mailed code unless it is verified already (an invitation
        confirmed it), then enrols the authenticator."""
        self.submit(email=email)
        assert self.step_state == "password", (self.status, self.alert)
        self.submit(password=password)
        if first_time:
            if not email_verified:
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

    # -- passkeys (the page's passkey form, as static/passkeys.js drives it)
    def passkey_options(self, form_id="passkey-form", **fields):
        """Ask the options of the page's passkey form (the fetch the script makes)."""
        form = self.page.forms[form_id]
        data = {k: v for k, v in dict(form["fields"], **fields).items() if k != "credential"}
        return self.http.post(form["attrs"]["data-options-url"], data=data,
                              headers={"X-CSRFToken": form["fields"].get("csrf_token", "")})

    def send_passkey(self, credential: str, form_id="passkey-form", follow=True, **fields):
        """Post the passkey form with the browser's answer (and the flow the options named)."""
        form = self.page.forms[form_id]
        return self.post(form["action"], dict(form["fields"], credential=credential, **fields), follow)

    def use_passkey(self, authenticator, form_id="passkey-form", *, origin=ISSUER, name=None, **options):
        """Press the page's passkey button: options, the authenticator's answer, the post."""
        form = self.page.forms[form_id]
        extra = {"name": name} if name is not None else {}
        response = self.passkey_options(form_id, **extra)
        assert response.status_code == 200, (response.status_code, response.get_json())
        data = response.get_json()
        if form["attrs"]["data-passkey"] == "create":
            credential = authenticator.create(data["publicKey"], origin, **options)
        else:
            credential = authenticator.get(data["publicKey"], origin, **options)
        if data.get("flow"):
            extra["flow"] = data["flow"]
        return self.send_passkey(credential, form_id, **extra)

    def next_totp(self) -> str:
        """A code the provider has not seen yet (codes are single use): the next
        time step within the accepted window of one step either side."""
        from idp import clock

        current = clock.timestamp() // 30
        counter = max(getattr(self, "_last_counter", current - 1) + 1, current - 1)
        assert counter <= current + 1, "no unused code left in this window: advance the clock"
        self._last_counter = counter
        return totp.code_for(self.totp_secret, counter)


def exchange_code(http, client, code, verifier, redirect_uri=REDIRECT_URI, auth="basic", headers=None):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    return token_request(http, client, data, auth, headers)


def token_request(http, client, data, auth="basic", headers=None):
    headers = dict(headers or {})
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


# -- tokens as a relying party gets them -------------------------------------------------

FULL = "openid profile email offline_access administrations"


def tokens_for(browser, client, scope=FULL, **params):
    browser.authorize(client["client_id"], scope=scope, **params)
    params = browser.callback_params()
    response = exchange_code(browser.http, client, params["code"], browser.verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def decode(http, token):
    jwks = http.get("/jwks.json").get_json()
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])


def introspect(http, client, token, hint=None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    return http.post("/introspect", data=data, headers=basic(client)).get_json()


def refresh(http, client, token):
    return token_request(http, client, {"grant_type": "refresh_token", "refresh_token": token})


def signed_in_browser(browser, portal, person):
    """The browser after a first sign-in at ``portal`` (the clock frozen at a fixed morning)."""
    clock.freeze(T0)
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    browser.first_code = browser.callback_params()["code"]
    return browser


# -- invitations -------------------------------------------------------------------------

GOOD_PASSWORD = "Zomer-fiets-42-Kaas"


def invite(cli, email="klant@example.com", administration="Bakkerij Jansen", *extra):
    result = cli.invoke(args=["invitations", "create", "--email", email, "--administration", administration,
                              "--name", "Piet Jansen", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def path_of(url):
    return url.replace("http://idp.test", "")


def accept_until(browser, app, url, state, email="klant@example.com", password=GOOD_PASSWORD):
    browser.get(path_of(url))
    assert browser.step_state == "intro", (browser.status, browser.alert)
    if state == "intro":
        return
    browser.submit()
    assert browser.step_state == "email_code"
    if state == "email_code":
        return
    browser.submit(email_code=code_from_mail(app, email))
    assert browser.step_state == "password", browser.alert
    if state == "password":
        return
    browser.submit(password=password, password_confirm=password)
    assert browser.step_state == "contract", browser.alert


# -- administrations, firms and access ---------------------------------------------------------


def make_company(app, owner_email, name="Bakkerij Jansen", **fields) -> str:
    """An administration owned by the account with ``owner_email`` (as an accepted invitation leaves it)."""
    from idp.services import accounts, administrations

    with app.app_context():
        administration = administrations.create_company(name, accounts.find_by_email(owner_email))
        for key, value in fields.items():
            setattr(administration, key, value)
        db.session.commit()
        return administration.id


def make_firm(app, name="Boekhouders BV", accountants=()) -> dict:
    """A firm (``{"administration_id", "firm_code"}``) with these accounts as its accountants."""
    result = cli_runner(app).invoke(args=["firms", "create", "--name", name, "--json"])
    assert result.exit_code == 0, result.output
    firm = json.loads(result.stdout)
    for email in accountants:
        add_member(app, email, firm["administration_id"], "accountant")
    return firm


def add_member(app, email, administration_id, role) -> None:
    from idp.models import Administration
    from idp.services import accounts, administrations

    with app.app_context():
        administrations.add_member(accounts.find_by_email(email), db.session.get(Administration, administration_id), role)
        db.session.commit()


def signed_in_at_provider(app, person) -> "Browser":
    """A browser in which ``person`` (an account of make_account) signed in for the first
    time at the provider itself (it stands on /account; the pages in English)."""
    browser = Browser(app)
    browser.get("/signin")
    browser.sign_in(person["email"], person["password"], first_time=True)
    assert browser.url.endswith("/account"), (browser.status, browser.url, browser.alert)
    browser.get("/account?lang=en")
    return browser


def form_with(browser, action_end: str, **fields) -> dict:
    """The page's form that posts to a URL ending in ``action_end`` and has these field values
    (the per-row forms of a table)."""
    for form in browser.page.forms.values():
        if form["action"].endswith(action_end) and all(form["fields"].get(k) == v for k, v in fields.items()):
            return form
    raise AssertionError(f"no form to …{action_end} with {fields}")


def post_form(browser, form, **fields):
    return browser.post(form["action"], {**form["fields"], **fields})


# -- DPoP (RFC 9449) ----------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DPoPKey:
    """A client's DPoP key pair, making proofs as a client library does; every part of a proof
    can be overridden to make a bad one."""

    def __init__(self, key=None):
        self.key = key or ECKey.generate_key("P-256")
        self.nonce = None

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(self, method="POST", path="/token", *, access_token=None, nonce="current", header=None, claims=None,
              sign_with=None) -> str:
        """A proof for ``method`` ``path`` at the provider; ``nonce="current"`` sends the last
        nonce the provider gave (none before)."""
        body = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": ISSUER + path, "iat": clock.timestamp()}
        if access_token is not None:
            body["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        nonce = self.nonce if nonce == "current" else nonce
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims or {})
        head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.as_dict(private=False)}
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not None}
        body = {k: v for k, v in body.items() if v is not None}
        if head["alg"] == "none":
            return f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(body).encode())}."
        return jwt.encode(head, body, sign_with or self.key, algorithms=[head["alg"]])

    def remember_nonce(self, response) -> None:
        if response.headers.get("DPoP-Nonce"):
            self.nonce = response.headers["DPoP-Nonce"]


def dpop_token_request(http, client, data, key: DPoPKey, auth="basic"):
    """A token request with a DPoP proof, as a client library sends it: once more with the
    provider's nonce when it asks for one (``use_dpop_nonce``)."""
    response = token_request(http, client, data, auth, {"DPoP": key.proof()})
    key.remember_nonce(response)
    if response.status_code == 400 and response.get_json().get("error") == "use_dpop_nonce":
        response = token_request(http, client, data, auth, {"DPoP": key.proof()})
        key.remember_nonce(response)
    return response


class SetAfter:
    """A stop event that is set from its ``checks``-th look on: the loop's worker began to end."""

    def __init__(self, checks: int):
        self._looks = 0
        self._checks = checks

    def is_set(self) -> bool:
        self._looks += 1
        return self._looks >= self._checks


def engine_on(app, dialect: str, what: str):
    """The app's engine; the test is skipped (``what`` says for want of what) unless the app
    runs on ``dialect`` ("postgresql", "sqlite")."""
    import pytest  # here: the benchmarks use these helpers without it

    with app.app_context():
        engine = db.engine
    if engine.dialect.name != dialect:
        pytest.skip(what)
    return engine


def kept_connection(engine):
    """The connection kept beside ``engine``'s pool (idp.readers) that the next read outside a
    transaction will run on (None when none is kept yet)."""
    from idp import readers

    kept = readers.of(engine)
    connection = kept.take()
    if connection is not None:
        kept.give_back(connection)
    return connection


def end_backends(engine, pids=None) -> int:
    """End PostgreSQL backends of ``engine``'s database as a restart or an administrator does
    (``pids``, or all but the caller's), from a connection of its own, and wait until they are
    gone: the server's notice to each client is sent by then. Returns how many it ended."""
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other:
        if pids is None:
            pids = [row[0] for row in other.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'")]
        ended = sum(other.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True for pid in pids)
        deadline = time.monotonic() + 10
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)).fetchone()[0]:
            assert time.monotonic() < deadline, f"backends {pids} did not end"
            time.sleep(0.02)
    return ended


def waiting_for_a_lock(engine, seconds=10.0) -> bool:
    """Whether a backend of ``engine``'s PostgreSQL database waits for a lock, within ``seconds``."""
    deadline = time.monotonic() + seconds
    watcher = engine.raw_connection()
    try:
        while time.monotonic() < deadline:
            cursor = watcher.cursor()
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND wait_event_type = 'Lock'")
            waiting = cursor.fetchone()[0]
            cursor.close()
            watcher.commit()
            if waiting:
                return True
            time.sleep(0.02)
        return False
    finally:
        watcher.close()


def traced_round_trips(connection, path, action):
    """Run ``action()`` with libpq's protocol trace on ``connection`` (psycopg's), written to
    ``path``: (what it returned, the round trips it made — a Sync or a simple Query sent each —
    and the messages it sent)."""
    with open(path, "w+b") as trace:
        connection.pgconn.trace(trace.fileno())
        try:
            result = action()
        finally:
            connection.pgconn.untrace()
        trace.seek(0)
        sent = sent_messages(trace.read())
    return result, round_trips(sent), sent


def sent_messages(trace: bytes) -> list[str]:
    """The types of the messages a libpq protocol trace shows sent to the server, in order."""
    messages = [line.split("\t") for line in trace.decode(errors="replace").splitlines()]
    return [fields[3] for fields in messages if len(fields) > 3 and fields[1] == "F"]


def round_trips(sent: list[str]) -> int:
    """The round trips of the messages sent (``sent_messages``): a Sync or a simple Query each."""
    return sent.count("Sync") + sent.count("Query")
