"""The operator UI in a real headless Chromium: log in, register a household of two, find a member by
a Bangla name, switch language, and see a bad NID refused with nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from field_node.app import create_app
from field_node.node import Node

from .conftest import OPERATOR, PASSWORD
from .hubfake import serve

pytestmark = pytest.mark.browser

SCREENSHOT = Path("/tmp/field-node-registration-bn.png")


@pytest.fixture
def server(node_dir: Path) -> Iterator[tuple[str, Node]]:
    node = Node(node_dir)  # locked: the browser's login unlocks it
    with serve(create_app({"NODE": node})) as url:
        yield url, node
    node.close()


def _count(node: Node, table: str) -> int:
    return int(node.require()[0].conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_operator_flow_in_chromium(browser: Any, server: tuple[str, Node]) -> None:
    url, node = server
    page = browser.new_page()
    try:
        page.goto(f"{url}/")
        assert "/login" in page.url
        page.get_by_label("Operator").fill(OPERATOR)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        assert page.locator("#password-error").inner_text() == "Wrong operator name or password"
        assert page.get_attribute("#password", "aria-describedby") == "password-error"
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        assert page.locator("#pending-count").inner_text() == "0"

        # register a household with two members, without any JavaScript
        page.get_by_role("link", name="Register household").first.click()
        page.get_by_label("Village").fill("Subil")
        page.fill("#m-0-full_name_bn", "সালমা বেগম")
        page.fill("#m-0-full_name_en", "Salma Begum")
        page.select_option("#m-0-sex", "female")
        page.fill("#m-0-date_of_birth", "1985-03-04")
        page.fill("#m-0-nid", "১৯৮৫১২৩৪৫৬৭৮৯০১২৩")
        page.fill("#m-1-full_name_bn", "রফিক মিয়া")
        page.fill("#m-1-full_name_en", "Rafiq Mia")
        page.select_option("#m-1-sex", "male")
        page.fill("#m-1-date_of_birth", "1980-05-06")
        page.select_option("#m-1-relation_to_head", "spouse")
        page.get_by_role("button", name="Save").click()
        assert page.get_by_text("Saved successfully").is_visible()
        assert page.locator("table.list tbody tr").count() == 2
        assert _count(node, "person") == 2

        # find one by a Bangla name
        page.goto(f"{url}/persons")
        page.get_by_label("Name, NID or mobile number").fill("রফিক")
        page.get_by_role("button", name="Search").last.click()
        rows = page.locator("table.list tbody tr")
        assert rows.count() == 1 and "Rafiq Mia" in rows.inner_text()

        # switch to Bangla: the labels change, the numbers too
        page.click("#lang-switch")
        assert page.locator("html").get_attribute("lang") == "bn"
        assert page.get_by_label("নাম, এনআইডি অথবা মোবাইল নম্বর").is_visible()
        page.goto(f"{url}/")
        assert page.locator("#pending-count").inner_text() == "৩"

        # a bad NID is refused at its field, in Bangla, and nothing is stored
        page.goto(f"{url}/households/new")
        assert page.get_by_label("গ্রাম").is_visible()
        page.fill("#m-0-full_name_bn", "ভুল নম্বর")
        page.select_option("#m-0-sex", "male")
        page.fill("#m-0-date_of_birth", "1990-01-01")
        page.fill("#m-0-nid", "12345")
        page.evaluate("document.fonts.ready.then(() => true)")  # the bundled Bangla font, served locally
        assert page.evaluate("document.fonts.check('16px \"Lohit Bengali\"', 'খানা')")
        page.screenshot(path=str(SCREENSHOT), full_page=False)
        page.get_by_role("button", name="সংরক্ষণ").click()
        error = page.locator("#m-0-nid-error")
        assert error.inner_text() == "১০, ১৩ অথবা ১৭ অঙ্কের হতে হবে"
        assert page.get_attribute("#m-0-nid", "aria-describedby") == "m-0-nid-error"
        assert page.get_attribute("#m-0-nid", "aria-invalid") == "true"
        assert page.input_value("#m-0-nid") == "12345"  # what was typed stays for correction
        assert _count(node, "person") == 2 and _count(node, "household") == 1 and _count(node, "outbox") == 3
    finally:
        page.close()
