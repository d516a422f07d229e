"""`make run`: the provider and the demo bookkeeping portal on SQLite with the dev mailbox.

Creates (once) the database, a portal client and a demo account in ./instance, then
serves both until Ctrl-C."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
STATE = INSTANCE / "demo.json"
IDP_PORT = int(os.environ.get("IDP_PORT", "5000"))
PORTAL_PORT = int(os.environ.get("PORTAL_PORT", "5001"))
ISSUER = f"http://127.0.0.1:{IDP_PORT}"
PORTAL = f"http://127.0.0.1:{PORTAL_PORT}"
IDP = [str(Path(sys.executable).parent / "idp")]


def env() -> dict:
    e = dict(os.environ)
    e.update(IDP_ENV="development", IDP_INSTANCE_PATH=str(INSTANCE), IDP_ISSUER=ISSUER)
    for key in ("IDP_MAIL_SERVER", "IDP_DATABASE_URL"):
        e.pop(key, None)
    return e


def idp(*args: str) -> str:
    return subprocess.run(IDP + list(args), env=env(), check=True, capture_output=True, text=True, cwd=ROOT).stdout


def setup() -> dict:
    INSTANCE.mkdir(exist_ok=True)
    idp("db", "upgrade")
    if STATE.exists():
        return json.loads(STATE.read_text())
    client = json.loads(
        idp(
            "clients", "create", "--name", "Bookkeeping portal", "--first-party", "--json",
            "--redirect-uri", f"{PORTAL}/callback", "--post-logout-redirect-uri", f"{PORTAL}/",
            "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        )
    )
    password = "Demo-" + secrets.token_urlsafe(9)
    email = "demo@example.com"
    idp("users", "create", "--email", email, "--password", password, "--name", "Demo Ondernemer", "--json")
    staff_password = "Staff-" + secrets.token_urlsafe(9)
    idp("staff", "create", "--email", "support@example.com", "--password", staff_password, "--name", "Support", "--json")
    firm = json.loads(idp("firms", "create", "--name", "Demo Accountants", "--json"))
    bank = json.loads(idp("clients", "create", "--name", "Demo bank", "--grant-type", "password", "--json"))
    invitation = json.loads(
        idp("invitations", "create", "--email", "client@example.com", "--name", "Client Example",
            "--administration", "Demo Bakery", "--firm", firm["administration_id"], "--json")
    )
    state = {"client": client, "email": email, "password": password, "staff_password": staff_password,
             "bank": bank, "invitation": invitation, "firm": firm}
    STATE.write_text(json.dumps(state, indent=2))
    STATE.chmod(0o600)
    return state


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {seconds:.0f}s")


def main() -> None:
    state = setup()
    procs = [
        subprocess.Popen(IDP + ["serve", "--port", str(IDP_PORT), "--workers", "2"], env=env(), cwd=ROOT),
        subprocess.Popen(
            [sys.executable, "-m", "clients.portal"],
            env={**os.environ, "PORTAL_ISSUER": ISSUER, "PORTAL_URL": PORTAL, "PORTAL_PORT": str(PORTAL_PORT),
                 "PORTAL_CLIENT_ID": state["client"]["client_id"],
                 "PORTAL_CLIENT_SECRET": state["client"]["client_secret"]},
            cwd=ROOT,
        ),
    ]
    try:
        wait_for(f"{ISSUER}/.well-known/openid-configuration")
        wait_for(f"{PORTAL}/")
        # A demo made before firms had codes has none on record: `make clean` starts afresh.
        firm_code = state.get("firm", {}).get("firm_code") or "unknown here; `make clean` makes a new demo"
        print(
            f"""
  Provider            {ISSUER}
  Demo portal         {PORTAL}            <- start here
  Dev mailbox         {ISSUER}/dev/mailbox  (the e-mail codes)

  Demo account        {state['email']}
  Password            {state['password']}

  An invitation       {state['invitation']['invitation_url']}
                      (for client@example.com from the firm Demo Accountants: accept it,
                      then sign in through the demo portal with the new account)
  Trial sign-up       {ISSUER}/signup   (firm code of Demo Accountants: {firm_code})
  Support console     {ISSUER}/support   support@example.com / {state['staff_password']}
  Bank connector      BANK_CLIENT_ID={state['bank']['client_id']} BANK_CLIENT_SECRET={state['bank']['client_secret']}
                      (see clients/bank_connector/README.md)

  The first sign-in checks the e-mail address (code in the dev mailbox) and sets up
  an authenticator app (scan the QR code or type the key). Without an app at hand:
    {sys.executable} -c "import pyotp; print(pyotp.TOTP('KEY WITHOUT SPACES').now())"

  Ctrl-C stops both.
""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a server stopped; stopping the other", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
