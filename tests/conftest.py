"""Test session setup: keep the compiled-codec cache out of the user's home."""

import os
import sys
import tempfile
from pathlib import Path

import pytest
from twisted.logger import globalLogPublisher

sys.path.insert(0, str(Path(__file__).resolve().parent))

if "GATEKEEPER_CACHE_DIR" not in os.environ:
    os.environ["GATEKEEPER_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"gatekeeper-test-cache-{os.getuid()}")


@pytest.fixture
def logged():
    """Every event logged through twisted.logger while the test runs."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    """Each test runs in its own directory: the embedded default writes CDRs
    to ./cdr.log, which must not land in the checkout."""
    monkeypatch.chdir(tmp_path)
