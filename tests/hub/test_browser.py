"""The conflict queue in a real headless Chromium against a live hub: log in, see a conflict made by
two real signed pushes over HTTP, open the three-way view, resolve it, see it gone, switch to Bangla."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import expect
from werkzeug.serving import make_server

from sync_protocol.ids import uuid7

from .conftest import PASSWORD, HubEnv
from .helpers import FakeNode, person

pytestmark = pytest.mark.browser


@pytest.fixture
def live_hub(hub_env: HubEnv) -> Iterator[tuple[HubEnv, str]]:
    server = make_server("127.0.0.1", 0, hub_env.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub_env, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def _push(base: str, envelope: bytes) -> dict:
    resp = requests.post(
        f"{base}/sync/v1/push", data=envelope, timeout=10, headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_resolve_a_conflict_in_the_browser(live_hub: tuple[HubEnv, str], browser) -> None:  # type: ignore[no-untyped-def]
    env, base = live_hub
    a, b = FakeNode(uuid7(), label="Subil UP office"), FakeNode(uuid7(), label="Debidwar upazila office")
    env.enrol(a)
    env.enrol(b)
    pid = uuid7()
    rev = _push(base, a.envelope([a.change(pid, person(1))]))["results"][0]["hub_seq"]
    _push(base, a.envelope([a.change(pid, {"mobile": "01811111111"}, base={"mobile": rev})]))
    answer = _push(base, b.envelope([b.change(pid, {"mobile": "01922222222"}, base={"mobile": rev}, actor="karim")]))
    assert answer["results"][0]["result"] == "conflict"

    page = browser.new_page(locale="en-US")
    try:
        page.goto(f"{base}/conflicts")
        page.get_by_label("Username").fill("resolver")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        rows = page.locator("#conflicts tbody tr")
        expect(rows).to_have_count(1)
        assert "Debidwar upazila office" in rows.first.inner_text()
        page.locator("a.open-conflict").first.click()
        expect(page.locator("#threeway")).to_be_visible()
        assert page.locator("#base-value").inner_text() == person(1)["mobile"]
        assert page.locator("#hub-value").inner_text() == "01811111111"
        assert page.locator("#incoming-value").inner_text() == "01922222222"
        assert "Debidwar upazila office" in page.locator("#office").inner_text()
        assert "Subil" in page.locator("#office").inner_text()
        assert page.locator("#operator").inner_text() == "karim"
        assert "Person 1" in page.locator("#record-summary").inner_text()
        page.evaluate("document.fonts.ready")
        page.screenshot(path="/tmp/hub_threeway_en.png", full_page=True)
        page.get_by_label("Take the incoming value").check()
        page.get_by_label("Note").fill("Confirmed with the beneficiary by phone")
        page.get_by_role("button", name="Resolve").click()
        expect(page.locator(".flash")).to_have_count(1)
        expect(page.locator("#no-conflicts")).to_be_visible()
        assert env.store.get_record("person", pid).fields["mobile"].value == "01922222222"  # type: ignore[union-attr]
        page.get_by_role("link", name="বাংলা").click()
        expect(page.locator("h1")).to_have_text("দ্বন্দ্বসমূহ")
        assert page.get_by_role("button", name="লগ আউট").is_visible()
        assert page.get_by_label("ইউনিয়ন").is_visible()
        page.evaluate("document.fonts.ready")
        page.screenshot(path="/tmp/hub_conflicts_bn.png", full_page=True)
    finally:
        page.close()
