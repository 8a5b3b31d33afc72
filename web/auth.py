"""Tokens: the write routes need the write token; with a read token set, so does everything else.

- A token travels only in the ``Authorization`` header: ``Bearer <token>`` for
  scripts, or HTTP Basic with any user name and the token as password, which
  a browser asks for by itself.  A token in the query string is refused on
  every route (400), because URLs land in logs and browser history.
- Tokens are compared with :func:`hmac.compare_digest` (constant time) and
  never logged or echoed.
- The write token also opens the read routes; the read token never opens a
  write route (403).  ``/api/health`` stays open for load balancers, but says
  nothing about the corpus while a read token is set (:mod:`web.api`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import current_app, request
from werkzeug.exceptions import BadRequest, Forbidden, Unauthorized

#: Query parameters that look like a token: refused wherever they appear.
TOKEN_PARAMETERS = ("token", "access_token", "api_key", "apikey", "key")
#: Routes open without the read token.
OPEN_PATHS = ("/api/health",)

F = TypeVar("F", bound=Callable[..., object])


def _given_token() -> str | None:
    """The token of the request's ``Authorization`` header (Bearer, or Basic's password), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def _matches(given: str | None, token: str | None) -> bool:
    return bool(given and token) and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


class Challenge(Unauthorized):
    """401 with the ``WWW-Authenticate`` challenge of ``scheme`` (Basic makes a browser ask for the token)."""

    def __init__(self, message: str, scheme: str) -> None:
        super().__init__(message)
        self.challenge = f'{scheme} realm="souyi"' + (', charset="UTF-8"' if scheme == "Basic" else "")

    def get_headers(self, *args: object, **kwargs: object) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("WWW-Authenticate", self.challenge)]


def check_read_access() -> None:
    """Before every request: refuse tokens in URLs; with a read token set, require a valid token."""
    if any(name in request.args for name in TOKEN_PARAMETERS):
        raise BadRequest("a token is never accepted in the URL (it would be logged); "
                         "send it in the Authorization header")
    read_token = current_app.config["SOUYI_READ_TOKEN"]
    if not read_token or request.path in OPEN_PATHS:
        return
    given = _given_token()
    if _matches(given, read_token) or _matches(given, current_app.config["SOUYI_WRITE_TOKEN"]):
        return
    scheme = "Bearer" if request.path.startswith("/api/") else "Basic"
    raise Challenge("this server needs a token: Authorization: Bearer TOKEN (or HTTP Basic with the token as "
                     "password)" if given is None else "the token is not valid here", scheme)


def write_route(view: F) -> F:
    """A route that changes the index: only with the write token (401 without or wrong, 403 for the read token)."""

    @wraps(view)
    def guarded(*args: object, **kwargs: object) -> object:
        given = _given_token()
        if _matches(given, current_app.config["SOUYI_WRITE_TOKEN"]):
            return view(*args, **kwargs)
        if _matches(given, current_app.config["SOUYI_READ_TOKEN"]):
            raise Forbidden("the read token cannot change the index; this route needs the write token")
        raise Challenge("this route needs the write token: Authorization: Bearer TOKEN" if given is None
                         else "the token is not valid here", "Bearer")

    return guarded  # type: ignore[return-value]


def corpus_is_private() -> bool:
    """Whether a read token protects the corpus (then the open health check must not describe it)."""
    return bool(current_app.config["SOUYI_READ_TOKEN"])
