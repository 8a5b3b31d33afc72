"""The app's request class: a query string that is not UTF-8 is read, not a crash.

Werkzeug decodes the raw query string as strict UTF-8 before parsing it, so
a request line carrying raw non-UTF-8 bytes (``GET /api/search?q=\\xff``,
which browsers never send but any client can) made ``request.args`` raise
and every route answer 500.  Here raw bytes above ASCII are percent-encoded
first and decoded like any escape, invalid ones as U+FFFD; valid UTF-8 reads
exactly as before.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.utils import cached_property

_RAW_BYTE = re.compile(rb"[\x80-\xff]")


class SouyiRequest(Request):
    """Flask's request with :attr:`args` that never fail to decode."""

    @cached_property
    def args(self) -> MultiDict[str, str]:
        escaped = _RAW_BYTE.sub(lambda m: b"%%%02X" % m.group()[0], self.query_string).decode("ascii")
        return self.parameter_storage_class(parse_qsl(escaped, keep_blank_values=True, errors="replace"))
