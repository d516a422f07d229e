"""Redirect URIs of web, browser and native apps (RFC 8252): which may be registered, which
a request's URI matches, and the web origin a registered URI implies.

- Web and claimed https URIs match exactly, as registered.
- A loopback URI registered without a port (``http://127.0.0.1/cb``, ``http://[::1]/cb``)
  matches that URI on any port (section 7.3): a native app listens on whichever port is
  free when it signs in. Registered with a port, it matches that port only.
- ``localhost`` is not taken as loopback (section 8.3 calls it NOT RECOMMENDED: the name
  may resolve elsewhere or be claimed by another program); such a URI matches exactly.
- Private-use schemes (``com.example.app:/cb``, section 7.1) are for public clients: a
  reverse domain name (with a dot), never a scheme a browser or the system gives meaning to.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
# Schemes that are not a native app's own: a browser or the system acts on them.
RESERVED_SCHEMES = frozenset({"http", "https", "javascript", "data", "file", "about", "blob", "vbscript", "ftp", "ws",
                              "wss", "mailto", "tel", "urn", "intent", "chrome", "view-source"})


def _split(uri):
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except (ValueError, TypeError, AttributeError):
        return None
    return parts


def _host(parts) -> str:
    """The host as written in a URI (IPv6 in brackets), lowercased."""
    netloc = parts.netloc.rpartition("@")[2].lower()
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1]
    return netloc.partition(":")[0]


def is_private_use(uri: str) -> bool:
    parts = _split(uri)
    return bool(parts and "." in parts.scheme and parts.scheme.lower() not in RESERVED_SCHEMES)


def is_portless_loopback(uri: str) -> bool:
    """A loopback IP URI registered without a port: it matches any port."""
    parts = _split(uri)
    return bool(parts and parts.scheme == "http" and _host(parts) in LOOPBACK_HOSTS and parts.port is None
                and "@" not in parts.netloc and not parts.fragment)


def registered(uris, presented) -> bool:
    """Whether ``presented`` is one of the registered ``uris``, by the rules above."""
    if not isinstance(presented, str):
        return False
    if presented in uris:
        return True
    parts = _split(presented)
    if parts is None or parts.scheme != "http" or parts.port is None or "@" in parts.netloc:
        return False
    # The same loopback URI without the port: registered portless, it takes any port.
    portless = parts._replace(netloc=_host(parts)).geturl()
    return portless in uris and is_portless_loopback(portless)


def problem(uri: str, *, public: bool) -> str | None:
    """Why ``uri`` cannot be registered as a (post-logout) redirect URI of this client, or None."""
    parts = _split(uri)
    if parts is None or parts.fragment or not parts.scheme:
        return "must be an absolute URI without a fragment"
    if parts.scheme in ("http", "https"):
        return None if parts.netloc else "must be an absolute URI without a fragment"
    if not is_private_use(uri):
        return "must be an http(s) URL or a private-use scheme named by a reverse domain (com.example.app:/cb)"
    if not public:
        return "a private-use scheme is for public (native) clients: register it with --public"
    return None


def web_origin(uri: str) -> str | None:
    """The browser origin of a web redirect URI (scheme, host, port), or None for a native
    app's (a private-use scheme, or a loopback URI that takes any port)."""
    parts = _split(uri)
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or is_portless_loopback(uri):
        return None
    return origin(f"{parts.scheme}://{parts.netloc}")


def origin(value: str) -> str | None:
    """``value`` as a browser sends it in ``Origin`` (lowercase, no default port), or None
    when it is not an http(s) origin (a path, a query, user info, a wildcard)."""
    parts = _split(value)
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc
            or parts.path not in ("", "/") or parts.query or parts.fragment or "*" in parts.netloc):
        return None
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{_host(parts)}" + (f":{port}" if port is not None and port != default else "")
