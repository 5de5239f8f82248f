"""Headless Debian chromium driven by Selenium, for the console's tests and screenshots.

Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver (Debian's ``chromium`` and
``chromium-driver``, which scripts/test.sh installs), so Selenium Manager never downloads a
browser. Credentials go in an ``Authorization`` header on every request of the page (the
DevTools protocol's extra headers), the way a browser sends them after its login prompt.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def missing() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return (
                f"{path} is not installed (apt-get install chromium chromium-driver); "
                "scripts/test.sh installs it"
            )
    return None


class Browser:
    """One chromium with its own fresh profile directory; ``quit()`` removes both."""

    def __init__(self, width: int = 1400, height: int = 900) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="taskstore-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        # the DevTools network events, to read the HTTP status of what the page loaded
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.execute_cdp_cmd("Network.enable", {})

    def login(self, user: str | None, password: str = "") -> None:
        """Send these credentials with every request from now on (None: none)."""
        headers: dict[str, str] = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})

    def get(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``predicate`` (a test's look at the page) until it is truthy."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.02).until(
            lambda _: predicate(), message=f"{what} (within {timeout} s)"
        )

    def rows(self) -> list[dict[str, str]]:
        """The task list as the page shows it: one dict per row."""
        return self.js(
            """
            return Array.from(document.querySelectorAll('#rows tr')).map(tr => ({
              id: tr.getAttribute('data-id'),
              method: tr.children[1].textContent,
              status: tr.children[2].querySelector('.st').textContent,
              message: tr.children[3].textContent,
            }));
            """
        )

    def statuses(self) -> dict[str, int]:
        """URL -> HTTP status of every response received since the last call."""
        out: dict[str, int] = {}
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.responseReceived":
                response = message["params"]["response"]
                out[response["url"]] = response["status"]
        return out

    def text(self, css: str) -> str:
        return self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css
        )

    def screenshot(self, path: str) -> None:
        self.driver.save_screenshot(path)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
