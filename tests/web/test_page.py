"""The web page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the app served
by uvicorn on 127.0.0.1: fill the form, estimate, read the results table, then show a field-naming error."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
# Flags for this offline machine (.library/env/machines/python.md): no background connections that the closed
# network would refuse, no sandbox as root, no GPU.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 10

uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from vramplan.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The app served by uvicorn in a background thread on a free loopback port, stopped after the module."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"uvicorn did not start within {START_TIMEOUT_S} s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=START_TIMEOUT_S)
    sock.close()


@pytest.fixture
def page(base_url: str):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(base_url)
        yield page
        browser.close()


def test_estimate_shows_terms_and_fits_then_an_inline_field_error(page, tmp_path):
    page.get_by_label("model").fill("llama-2-7b")
    page.get_by_label("weights").fill("int8")
    page.get_by_label("gpu", exact=True).fill("RTX-3090")
    page.get_by_role("button", name="Estimate").click()

    terms = page.locator("#terms")
    terms.wait_for()
    assert terms.locator("tr[data-term='weights_quantized']").count() == 1
    assert page.locator("#fits").inner_text().startswith("fits: yes")
    assert "llama-2-7b · inference · weights int8 · 1× RTX-3090" in page.locator("#results h2").inner_text()

    shot = tmp_path / "web.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.get_by_label("batch").fill("-1")
    page.get_by_role("button", name="Estimate").click()
    error = page.locator("#error")
    error.wait_for()
    assert "batch_size" in error.inner_text()
    assert page.locator("#batch_size").get_attribute("aria-invalid") == "true"
    assert "batch_size" in page.locator("#batch_size-error").inner_text()


def test_speed_shows_decode_rate_and_ttft(page):
    page.get_by_label("model").fill("llama-2-7b")
    page.get_by_role("button", name="Speed").click()
    table = page.locator("#speed-table")
    table.wait_for()
    text = table.inner_text()
    assert "decode tokens/s" in text and "TTFT" in text
