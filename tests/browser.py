"""Debian's Chromium driven headless by Playwright, for the browser tests (never a downloaded browser). Where
``PDG_EVAL_REQUIRE_BROWSER`` is set (CI), a missing Chromium fails instead of skipping."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 30_000

sync_api = pytest.importorskip("playwright.sync_api")
HAVE_CHROMIUM = shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()
if not HAVE_CHROMIUM and os.environ.get("PDG_EVAL_REQUIRE_BROWSER"):  # CI sets it: never skip silently there
    raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
needs_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason="Debian chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()
