"""Real headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

No Playwright browser download: ``.ci/run`` installs the ``chromium`` package.
A test module calls :func:`require_chromium` first, so it is skipped (with the
reason) where Chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def require_chromium() -> None:
    """Skip the calling module when Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; .ci/run does)", allow_module_level=True)


def launch(playwright, profile: Path, **options):
    """A fresh persistent Chromium context (its own --user-data-dir at ``profile``)."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, **options
    )
