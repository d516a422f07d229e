"""`make run`: the provider and the demo bookkeeping portal on SQLite with the dev mailbox.

Creates (once) the database and the demo data in ./instance (the portal's client, an
entrepreneur with an administration, an accountant of the demo firm, a support member, a bank
client, an invitation), registers the portal's addresses for the ports of this run, then
serves both until Ctrl-C. The ports are IDP_PORT (5000) and PORTAL_PORT (5001); when one is
taken it stops at once and says so.

The `idp` commands reach the same data from the repository's folder with IDP_ENV=development
(and IDP_ISSUER=http://127.0.0.1:$IDP_PORT when the port is not 5000).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
STATE = INSTANCE / "demo.json"
IDP = [str(Path(sys.executable).parent / "idp")]
FIRM = "Demo Accountants"
ENTREPRENEUR = ("demo@example.com", "Demo Ondernemer", "Demo Webshop")
ACCOUNTANT = ("accountant@example.com", "Demo Boekhouder")
STAFF = "support@example.com"


def _port(name: str, default: str) -> int:
    text = os.environ.get(name, default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SystemExit(f"make run: {name} must be a port number, got {text!r}")
    return int(text)


IDP_PORT = _port("IDP_PORT", "5000")
PORTAL_PORT = _port("PORTAL_PORT", "5001")
ISSUER = f"http://127.0.0.1:{IDP_PORT}"
PORTAL = f"http://127.0.0.1:{PORTAL_PORT}"


def check_ports() -> None:
    """Stop at once, with the reason, when a port is taken (before anything is started)."""
    if IDP_PORT == PORTAL_PORT:
        raise SystemExit(f"make run: IDP_PORT and PORTAL_PORT are both {IDP_PORT}; choose two ports")
    for name, port in (("IDP_PORT", IDP_PORT), ("PORTAL_PORT", PORTAL_PORT)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise SystemExit(
                    f"make run: port {port} ({name}) cannot be used: {exc.strerror}. Stop the program that "
                    f"uses it, or choose other ports, e.g. IDP_PORT=5100 PORTAL_PORT=5101 make run"
                ) from None


def env() -> dict:
    e = dict(os.environ)
    e.update(IDP_ENV="development", IDP_INSTANCE_PATH=str(INSTANCE), IDP_ISSUER=ISSUER)
    for key in ("IDP_MAIL_SERVER", "IDP_DATABASE_URL"):
        e.pop(key, None)
    return e


def idp(*args: str) -> str:
    return subprocess.run(IDP + list(args), env=env(), check=True, capture_output=True, text=True, cwd=ROOT).stdout


def in_demo_app(work) -> None:
    """Run ``work()`` in the provider's app on the demo instance and commit: for what the
    `idp` command does not do (memberships, changing a client's addresses)."""
    os.environ.update({k: v for k, v in env().items() if k.startswith("IDP_")})
    from idp import create_app
    from idp.extensions import db

    app = create_app()
    with app.app_context():
        work()
        db.session.commit()


def create_data(run, in_app) -> dict:
    """The demo data, created with the `idp` command (``run(*args) -> stdout``) and, for the
    memberships, in the app (``in_app(work)``). Returns what `make run` prints."""
    client = json.loads(run(
        "clients", "create", "--name", "Bookkeeping portal", "--localized-name", "nl=Boekhoudportaal",
        "--first-party", "--json", "--redirect-uri", f"{PORTAL}/callback",
        "--post-logout-redirect-uri", f"{PORTAL}/", "--client-uri", f"{PORTAL}/",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
    ))
    people = {}
    for key, (email, name), command in (("entrepreneur", ENTREPRENEUR[:2], "users"),
                                        ("accountant", ACCOUNTANT, "users"), ("staff", (STAFF, "Support"), "staff")):
        password = secrets.token_urlsafe(12)
        run(command, "create", "--email", email, "--password", password, "--name", name, "--json")
        people[key] = {"email": email, "password": password}
    created = json.loads(run("firms", "create", "--name", FIRM, "--json"))
    firm, firm_code = created["administration_id"], created["firm_code"]
    bank = json.loads(run("clients", "create", "--name", "Demo bank", "--grant-type", "password", "--json"))
    invitation = json.loads(run(
        "invitations", "create", "--email", "client@example.com", "--name", "Client Example",
        "--administration", "Demo Bakery", "--firm", firm, "--json",
    ))
    in_app(lambda: link_people(firm))
    return {"client": client, "people": people, "firm": firm, "firm_code": firm_code, "bank": bank,
            "invitation": invitation}


def link_people(firm_id: str) -> None:
    """The accountant works at the demo firm (so Client management is on their account page);
    the entrepreneur owns an administration that the firm may access."""
    from idp.services import accounts, administrations

    firm = administrations.find(firm_id)
    accountant = accounts.find_by_email(ACCOUNTANT[0])
    if not administrations.is_firm_accountant(accountant, firm):
        administrations.add_member(accountant, firm, "accountant")
    owner = accounts.find_by_email(ENTREPRENEUR[0])
    if not owner.memberships:
        administrations.create_company(ENTREPRENEUR[2], owner, firm=firm)


def register_portal(client_id: str) -> None:
    """The portal's addresses for this run's port (the ports may differ from the first run)."""
    from idp.extensions import db
    from idp.models import Client

    client = db.session.get(Client, client_id)
    client.redirect_uris = [f"{PORTAL}/callback"]
    client.post_logout_redirect_uris = [f"{PORTAL}/"]
    client.client_uri = f"{PORTAL}/"


def setup(run=idp, in_app=in_demo_app, state_path: Path = STATE) -> dict:
    """The demo data (created on the first run, completed when an older run lacks some),
    with the portal registered for this run's ports."""
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    if state is not None and ("people" not in state or "firm_code" not in state):
        raise SystemExit(f"make run: {state_path.parent} holds the demo data of an older version; "
                         f"remove that folder to start afresh")
    if state is None:
        state = create_data(run, in_app)
        state_path.write_text(json.dumps(state, indent=2))
        state_path.chmod(0o600)
    client_id = state["client"]["client_id"]
    in_app(lambda: register_portal(client_id))
    return state


def wait_for(url: str, procs, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"make run: the {name} stopped while starting (exit {proc.returncode}); see above")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"make run: {url} did not answer within {seconds:.0f}s")


def banner(state: dict) -> str:
    people = state["people"]
    token = state["invitation"]["invitation_url"].rsplit("/invitation/", 1)[1]
    width = max(len(p["email"]) for p in people.values())

    def line(key: str, what: str) -> str:
        return f"    {people[key]['email']:<{width}}  {people[key]['password']:<24}  {what}"

    return f"""
  Provider            {ISSUER}
  Demo portal         {PORTAL}            <- start here
  Dev mailbox         {ISSUER}/dev/mailbox  (the e-mail codes)

  Accounts (e-mail, password, what it shows):
{line("entrepreneur", f"an entrepreneur: owns {ENTREPRENEUR[2]} (the portal's claims; its connector user on /account)")}
{line("accountant", f"an accountant of {FIRM}: the firm portal at {ISSUER}/firm and Client management")}
{line("staff", f"support staff: the console at {ISSUER}/support")}
  Each account's first sign-in checks the address (code in the dev mailbox) and sets up an
  authenticator app (scan the QR code or type the key). Without an app at hand:
    {sys.executable} -c "import pyotp; print(pyotp.TOTP('KEY WITHOUT SPACES').now())"

  An invitation       {ISSUER}/invitation/{token}
                      (for client@example.com from {FIRM}: accept it, then sign in through
                      the demo portal with the new account)
  Trial sign-up       {ISSUER}/signup   (the firm code of {FIRM}: {state['firm_code']})
  Bank connector      BANK_CLIENT_ID={state['bank']['client_id']} BANK_CLIENT_SECRET={state['bank']['client_secret']}
                      (see clients/bank_connector/README.md)
  The idp command     IDP_ENV=development{'' if IDP_PORT == 5000 else f' IDP_ISSUER={ISSUER}'} .venv/bin/idp accounts show {people['entrepreneur']['email']}

  Ctrl-C stops both.
"""


def main() -> None:
    check_ports()
    INSTANCE.mkdir(exist_ok=True)
    idp("db", "upgrade")
    state = setup()
    procs = [
        ("provider", subprocess.Popen(IDP + ["serve", "--port", str(IDP_PORT), "--workers", "2"], env=env(), cwd=ROOT)),
        ("demo portal", subprocess.Popen(
            [sys.executable, "-m", "clients.portal"],
            env={**os.environ, "PORTAL_ISSUER": ISSUER, "PORTAL_URL": PORTAL, "PORTAL_PORT": str(PORTAL_PORT),
                 "PORTAL_CLIENT_ID": state["client"]["client_id"],
                 "PORTAL_CLIENT_SECRET": state["client"]["client_secret"]},
            cwd=ROOT,
        )),
    ]
    try:
        wait_for(f"{ISSUER}/.well-known/openid-configuration", procs)
        wait_for(f"{PORTAL}/", procs)
        print(banner(state), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        print("a server stopped; stopping the other", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        for _, p in procs:
            p.terminate()
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
