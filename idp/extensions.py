"""The Flask extensions, created unbound and bound in ``create_app``."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask import current_app, request
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
mail = Mail()


class ExemptFirstCSRFProtect(CSRFProtect):
    """Flask-WTF's, with what it decides about an endpoint's exemption (the view or its
    blueprint marked exempt) remembered per application and endpoint: its hook runs before
    every request, and the protocol endpoints, all exempt, paid for the search each time.
    An endpoint not exempt is checked exactly as before."""

    _CACHE = "idp.csrf_exempt"

    def protect(self, apply_exemptions=False):
        if apply_exemptions:
            endpoint = request.endpoint
            if not endpoint:
                return None
            known = current_app.extensions.setdefault(self._CACHE, {})
            exempt = known.get(endpoint)
            if exempt is None:
                exempt = known[endpoint] = self._is_exempt()
            if exempt:
                return None
        return super().protect()


csrf = ExemptFirstCSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
