"""Who is at the desk: a signed session cookie, set by the login form, and the CSRF token of its POSTs.

A browser page cannot send the ``X-API-Key`` header by itself, and a key kept in the page's script
would be readable by any script on it. So the analyst types the key once, into the login form; the
service checks it and answers with a cookie holding the analyst's name and the time it was issued,
signed with a secret derived from the key (HMAC-SHA256): ``HttpOnly`` (scripts cannot read it),
``SameSite=Strict`` (another site's page never sends it), ``Path=/desk``. Changing the key ends
every session. Each POST also carries a CSRF token (an HMAC of the session, in the page's
``<meta name="csrf-token">``, sent back as the ``X-CSRF-Token`` header) and, when the browser
names it, an ``Origin`` that is the service's own.

A service without an API key is open (its ``/v1/labels`` takes anyone's labels): the desk then asks
only for the name, and its cookies are signed with a secret anyone could derive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass

from fraudflow.errors import ConfigError

COOKIE = "fraudflow_desk"
CSRF_HEADER = "x-csrf-token"
#: how long a login lasts
SESSION_SECONDS = 12 * 3600
#: an analyst's name: letters, digits, spaces and . _ ' @ -, 1 to 64 characters
NAME = re.compile(r"[\w .'@-]{1,64}")


class LoginError(ConfigError):
    """A login refused: a wrong key, or a name the desk does not take."""


@dataclass(frozen=True)
class Session:
    """A logged-in analyst."""

    analyst: str
    issued: int  # epoch seconds
    token: str  # the cookie's value


def secret(api_key: str | None) -> bytes:
    """The signing secret of a service with ``api_key`` (None: an open service's, which anyone can derive)."""
    return hashlib.sha256(b"fraudflow-desk\0" + (api_key or "").encode()).digest()


def check_name(name: str) -> str:
    """The analyst's name, stripped; ``LoginError`` unless it is 1-64 letters, digits, spaces or . _ ' @ -."""
    stripped = name.strip()
    if not NAME.fullmatch(stripped):
        raise LoginError("a name is 1 to 64 letters, digits, spaces or . _ ' @ -")
    return stripped


def login(api_key: str | None, name: str, key: str, now: float | None = None) -> Session:
    """A session for ``name`` when ``key`` is the service's API key (any key when it has none)."""
    analyst = check_name(name)
    if api_key is not None and not hmac.compare_digest(key.encode(), api_key.encode()):
        raise LoginError("wrong API key")
    issued = int(time.time() if now is None else now)
    body = base64.urlsafe_b64encode(json.dumps({"a": analyst, "t": issued}).encode()).decode().rstrip("=")
    return Session(analyst, issued, f"{body}.{_sign(api_key, body)}")


def verify(api_key: str | None, token: str | None, now: float | None = None) -> Session | None:
    """The session ``token`` (a cookie's value) stands for, or None: unsigned, forged, expired or malformed."""
    if not token or token.count(".") != 1:
        return None
    body, signature = token.split(".")
    if not hmac.compare_digest(signature.encode(), _sign(api_key, body).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        analyst, issued = check_name(str(data["a"])), int(data["t"])
    except (ValueError, KeyError, TypeError, LoginError):
        return None
    if not 0 <= (time.time() if now is None else now) - issued < SESSION_SECONDS:
        return None
    return Session(analyst, issued, token)


def csrf_token(api_key: str | None, session: Session) -> str:
    """The token a page of ``session`` sends back with each POST."""
    return _sign(api_key, f"csrf|{session.token}")


def check_csrf(api_key: str | None, session: Session, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(token.encode(), csrf_token(api_key, session).encode())


def _sign(api_key: str | None, text: str) -> str:
    return hmac.new(secret(api_key), text.encode(), hashlib.sha256).hexdigest()
