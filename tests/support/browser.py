"""A real browser on the project's Airflow UI: Debian's chromium driven by Playwright (headless, by its executable
path: nothing downloaded), logged in through the UI's own login form, screenshots kept as test artefacts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Frame, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"  # make setup installs Debian's chromium (scripts/ensure_system_packages.sh)
TIMEOUT_MS = 60_000  # a loaded two-core machine renders the UI slowly


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless chromium, closed after."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def logged_in(browser, url: str, username: str, password: str) -> Page:
    """A new page logged in through the UI's login form (which sets the session cookie the UI's frames carry)."""
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()  # more pages may share the login
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}/")
    page.locator("input:not([type=password])").first.fill(username)
    page.locator("input[type=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"{url}/")
    return page


def trigger_form_can_be_sent_as_it_opens(page: Page, url: str, dag_id: str, shot: Path) -> bool:
    """Open the DAG's trigger form; whether its Trigger button is enabled with the defaults (screenshot taken)."""
    page.goto(f"{url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("What to release").wait_for()
    page.screenshot(path=str(shot))
    return dialog.get_by_role("button", name="Trigger").is_enabled()


def trigger_form_refusal(page: Page, url: str, dag_id: str, field: str, value: str, shot: Path,
                         section: str = "What to release") -> str:
    """Open the DAG's trigger form and ``field``'s section, type ``value`` into ``field`` and press Trigger; the
    form's text once it shows the refusal naming ``field`` (screenshot taken)."""
    page.goto(f"{url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name=section, exact=True).click()
    dialog.locator(f"#element_{field}").fill(value)
    dialog.get_by_role("button", name="Trigger").click()
    dialog.get_by_text(f"Invalid input for param {field}").first.wait_for()  # a time-out: not refused
    page.screenshot(path=str(shot))
    return dialog.inner_text()


def trigger_from_the_form(page: Page, url: str, dag_id: str, shot: Path, dry_run: bool = False) -> None:
    """Open the DAG's trigger form, switch Dry run on if asked, and press Trigger with every other field as the form
    opens (screenshot taken before pressing)."""
    page.goto(f"{url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("What to release").click()
    if dry_run:
        dialog.locator("label:has(input[name=element_dry_run])").click()  # the switch's own label
    page.screenshot(path=str(shot))
    dialog.get_by_role("button", name="Trigger").click()
    dialog.wait_for(state="hidden")


def required_action(page: Page, url: str, dag_id: str, run_id: str, task_id: str) -> Page:
    """The task's Required Action tab, opened."""
    page.goto(f"{url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/required_actions")
    page.get_by_role("button", name="Respond").or_(page.get_by_role("button", name="Approve")).first.wait_for()
    return page


def confirm_items(page: Page, items: dict[str, tuple[str, str]], shot: Path) -> None:
    """On an open Required Action tab: tick each item (its option's label) and fill its link field (``items``: label
    -> (field, link)), then press Respond (screenshot taken before pressing)."""
    for option, (field, link) in items.items():
        page.get_by_role("combobox").click()
        page.get_by_role("option", name=option).click()
        page.keyboard.press("Escape")
        page.locator(f"#element_{field}").fill(link)
    page.screenshot(path=str(shot), full_page=True)
    page.get_by_role("button", name="Respond").click()
    page.get_by_role("button", name="Respond").wait_for(state="hidden")
    leave(page)


def approve(page: Page, shot: Path) -> None:
    """On an open Required Action tab of an approval: press Approve (screenshot taken before)."""
    page.screenshot(path=str(shot), full_page=True)
    page.get_by_role("button", name="Approve").click()
    page.wait_for_selector('[data-testid="hitl-option-Approve"][disabled]')  # answered: the choices are disabled
    leave(page)


def leave(page: Page) -> None:
    """Leave the UI for a blank page: an open DAG or run page polls the API server every few seconds, and a few of
    them at once keep a two-core machine's single API worker busy enough to time out the tests' own requests."""
    page.goto("about:blank")


def release_board_tab(page: Page, url: str, dag_id: str, run_id: str) -> Frame:
    """The run's Release board tab in the UI (the plugin's external view), opened; its frame."""
    page.goto(f"{url}/dags/{dag_id}/runs/{run_id}")
    page.get_by_role("tab", name="Release board").or_(page.get_by_role("link", name="Release board")).first.click()
    page.locator("iframe").wait_for()
    frame = page.frames[-1]
    frame.wait_for_selector("#split")
    return frame


def green_share_shown(frame: Frame) -> int:
    """The green share the board's split shows."""
    return int(frame.locator("#split").get_attribute("data-green"))
