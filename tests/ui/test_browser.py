"""The web UI in a real browser (Debian's headless Chromium through Selenium), with the real git-lfs client.

The story: sign in → create a token → git lfs pushes with it → the objects appear → another user's `git lfs lock`
shows up → force-unlock in the UI → `git lfs locks` no longer lists it → revoke the token → the next push fails with
401. Every page visited is audited with axe-core (no serious or critical violations) and saved as a screenshot in the
test's temp dir. Without chromium-driver or axe-core the tests skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, Server, require_git_lfs, write_random

pytestmark = pytest.mark.e2e

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPmrEFbCEOBfD4vZgB3j6IPfQYl2yvN3JqV2k0W2Zqo alice@laptop"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PASSWORD = "correct horse battery"
XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI: `make setup` installs it")
    pytest.skip(f"{what} is missing (make setup installs it as root)")


class Page:
    """A Chromium driven by Selenium, with the checks every page gets."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots
        self.axe = AXE.read_text()

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def submit(self, css: str) -> None:
        """Click the button and wait for the page it leads to (the old one goes stale)."""
        button = self.find(css)
        button.click()
        self.wait_gone(button)

    def wait_gone(self, element: Any) -> None:
        """Wait until ``element``'s page has been replaced. Chromedriver reports an element of a page being
        replaced either as stale or, in the instant between, as a node that "does not belong to the document":
        both mean the old page is gone."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        def gone(_: Any) -> bool:
            try:
                element.is_enabled()
            except StaleElementReferenceException:
                return True
            except WebDriverException as exc:
                if "does not belong to the document" in str(exc):
                    return True
                raise
            return False

        WebDriverWait(self.driver, 20).until(gone)

    def fill(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def check(self, name: str) -> None:
        """No alert ran (escaping held), a screenshot, and an accessibility audit without serious violations."""
        from selenium.common.exceptions import NoAlertPresentException

        with pytest.raises(NoAlertPresentException):
            self.driver.switch_to.alert.text  # noqa: B018 - the property raises when there is none
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))
        self.driver.execute_script(self.axe)
        violations = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations));"
        )
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in violations
            if v["impact"] in ("serious", "critical")
        ]
        assert not serious, f"{name}: {serious}"


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        _missing("chromium / chromium-driver")
    if not AXE.exists():
        _missing("axe-core (tests/ui/node_modules)")
    options = Options()
    options.binary_location = CHROMIUM
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000")
    for argument in flags:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(30)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        yield Page(driver, "", shots)
    finally:
        driver.quit()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    require_git_lfs()
    server = Server.start(tmp_path / "data")
    try:
        yield Deployment(server, tmp_path)
    finally:
        assert server.stop() == 0, server.log()
        assert "Traceback" not in server.log(), server.log()


def _sign_in(page: Page, name: str, password: str) -> None:
    page.open("/ui/login")
    page.check("login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.submit("form button[type=submit]")


def test_the_story_in_a_real_browser(page: Page, deployment: Deployment) -> None:
    server = deployment.server
    page.base = server.url
    server.cli("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    bob = deployment.user("bob")
    deployment.repo("studio/art", ("alice", "admin"), ("bob", "write"))

    _sign_in(page, "alice", PASSWORD)
    assert "studio/art" in page.find("main").text
    page.check("home")

    # A token, created in the UI; its secret is shown once.
    page.open("/ui/tokens")
    page.fill("#label", XSS)
    page.submit("form[action='/ui/tokens'] button[type=submit]")
    secret = page.find("#secret").get_attribute("value")
    assert secret.startswith("lfsd_")
    assert XSS in page.find("table").text  # the label as text, not markup
    page.check("tokens")

    # The real client pushes with it.
    alice = GitUser(deployment.tmp / "home-alice", "alice", secret, server.url)
    origin = deployment.tmp / "origin.git"
    work = alice.new_repo(deployment.tmp / "alice", origin, "studio/art")
    oids = [write_random(work / f"asset{i}.bin", 1000 + i) for i in range(3)]
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "assets", cwd=work)
    alice.git("push", "-q", "origin", "main", cwd=work)

    page.open("/ui/repo/studio/art")
    shown = page.find("#objects").find_element("xpath", "..").text
    for oid in oids:
        assert oid in shown
    # The chart draws the usage history the push recorded.
    assert "3 objects" in page.find("svg.chart desc").get_attribute("textContent")
    page.check("repository")

    # Another user locks a file with git lfs lock; the lock shows up.
    theirs = deployment.tmp / "bob"
    bob.git("clone", "-q", str(origin), str(theirs))
    assert "Locked asset0.bin" in bob.git("lfs", "lock", "asset0.bin", cwd=theirs)
    page.open("/ui/repo/studio/art")
    locks = page.find("#locks").find_element("xpath", "..")
    assert "asset0.bin" in locks.text and "bob" in locks.text

    # Forced open from the UI, after a confirmation step.
    link = locks.find_element("link text", "Force unlock")
    link.click()
    page.wait_gone(link)
    page.check("confirm-unlock")
    page.submit("form[action='/ui/locks/unlock'] button[type=submit]")
    assert "asset0.bin" not in page.find("#locks").find_element("xpath", "..").text
    assert "asset0.bin" not in bob.git("lfs", "locks", cwd=theirs)

    # Revoked in the UI: the next push is refused with 401.
    page.open("/ui/tokens")
    page.submit("button.danger")
    assert XSS not in page.find("table").text  # revoked tokens leave the list
    write_random(work / "asset9.bin", 999)
    alice.git("add", ".", cwd=work)
    alice.git("commit", "-q", "-m", "more", cwd=work)
    before = len(_batch_statuses(server))
    out = alice.git("push", "-q", "origin", "main", cwd=work, check=False)
    pushed = alice.git("rev-parse", "origin/main", cwd=work).strip()
    assert pushed != alice.git("rev-parse", "HEAD", cwd=work).strip(), out  # the push did not happen
    after = _batch_statuses(server)[before:]
    assert after and set(after) == {401}, (after, out)

    # An SSH key, added in the UI (the label as text), then removed after a confirmation step.
    page.open("/ui/ssh-keys")
    page.fill("#key", ED25519)
    page.fill("#key-label", XSS)
    page.submit("form[action='/ui/ssh-keys'] button[type=submit]")
    listed = page.find("table").text
    assert XSS in listed and "SHA256:" in listed
    page.check("ssh-keys")
    page.driver.get(page.find("table a.danger").get_attribute("href"))
    page.check("confirm-ssh-key")
    page.submit("form[action='/ui/ssh-keys/remove'] button[type=submit]")
    assert "No SSH keys." in page.find("table").text


def _batch_statuses(server: Server) -> list[int]:
    statuses = []
    for line in server.log().splitlines():
        if line.startswith("{") and '"route":"/{repo}/info/lfs/objects/batch"' in line:
            statuses.append(json.loads(line)["status"])
    return statuses


def test_administration_on_a_phone_in_dark_mode(page: Page, deployment: Deployment) -> None:
    server = deployment.server
    page.base = server.url
    server.cli("user", "add", "boss", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    deployment.repo("studio/art")
    page.driver.set_window_size(390, 844)
    page.driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    _sign_in(page, "boss", PASSWORD)
    page.check("phone-home")
    page.open("/ui/admin")
    page.fill("#new-name", XSS)
    page.submit("form[action='/ui/admin/users'] button[type=submit]")
    assert XSS in page.find("table").text
    page.check("phone-admin-users")
    for name in ("repos", "audit", "status"):
        page.open(f"/ui/admin/{name}")
        page.check(f"phone-admin-{name}")
    page.open("/ui/admin/audit?action=user.add")
    assert "user.add" in page.find("table").text
    # Keyboard: the skip link is the first stop and is visible when focused.
    page.open("/ui/")
    from selenium.webdriver.common.keys import Keys

    page.find("body").send_keys(Keys.TAB)
    focused = page.driver.switch_to.active_element
    assert focused.text == "Skip to content" and focused.is_displayed()
