"""The documentation site in a real browser: headless Chromium (Debian's
chromium and chromium-driver packages, installed by .ci/run) loads the pages,
follows links by clicking them, runs the search, and leaves screenshots in
tests/_output/<test name>/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1400"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def in_view(driver, element) -> bool:
    """Whether the element's top edge is inside the window (the browser scrolled to it)."""
    top = driver.execute_script("return arguments[0].getBoundingClientRect().top", element)
    return -2 <= top < driver.execute_script("return window.innerHeight")  # sub-pixel rounding


def open_page(driver, site: Path, page: str):
    driver.get((site / page).as_uri() if "#" not in page else
               (site / page.split("#")[0]).as_uri() + "#" + page.split("#")[1])


def test_get_nested_state_section_renders_with_tables_and_working_links(browser, site, output_dir):
    from selenium.webdriver.common.by import By
    open_page(browser, site, "reference/x86.html#api-kvm-get-nested-state")
    assert browser.title.startswith("x86 ioctls")
    section = browser.find_element(By.ID, "kvm-get-nested-state")
    heading = section.find_element(By.TAG_NAME, "h2")
    assert heading.text.startswith("KVM_GET_NESTED_STATE")
    assert in_view(browser, heading), "the browser did not scroll to the section"
    browser.save_screenshot(str(output_dir / "kvm_get_nested_state.png"))

    # The field list and the flag table render as such, with the flag values.
    fields = section.find_element(By.CSS_SELECTOR, "dl.field-list")
    assert "KVM_CAP_NESTED_STATE" in fields.text and "vcpu ioctl" in fields.text
    tables = section.find_elements(By.TAG_NAME, "table")
    assert len(tables) >= 2
    flag_table = next(t for t in tables if "KVM_STATE_NESTED_GUEST_MODE" in t.text)
    assert flag_table.size["width"] > 300 and flag_table.is_displayed()
    rows = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in flag_table.find_elements(By.TAG_NAME, "tr")]
    assert ["KVM_STATE_NESTED_GIF_SET", "0x00000100", "5.8"] in [r[:3] for r in rows], rows

    # Clicking the capability goes to its section, whose gates lead back here.
    section.find_element(By.LINK_TEXT, "KVM_CAP_NESTED_STATE").click()
    assert browser.current_url.endswith("reference/capabilities.html#api-kvm-cap-nested-state")
    cap = browser.find_element(By.ID, "kvm-cap-nested-state")
    assert in_view(browser, cap.find_element(By.TAG_NAME, "h3"))
    browser.save_screenshot(str(output_dir / "kvm_cap_nested_state.png"))
    cap.find_element(By.LINK_TEXT, "KVM_SET_NESTED_STATE").click()
    assert browser.current_url.endswith("reference/x86.html#api-kvm-set-nested-state")
    assert in_view(browser, browser.find_element(By.ID, "kvm-set-nested-state").find_element(By.TAG_NAME, "h2"))


def test_capability_index_renders_one_row_per_capability_with_working_links(browser, site, output_dir):
    import kvm_uapi
    from selenium.webdriver.common.by import By
    open_page(browser, site, "reference/capability-index.html")
    table = browser.find_element(By.CSS_SELECTOR, "table")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == len(kvm_uapi.CAPABILITIES)
    header = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert header == ["Number", "Capability", "Since", "Architectures", "Checked on", "Answer", "Opt-in", "Gates"]
    browser.save_screenshot(str(output_dir / "capability_index.png"))

    row = next(r for r in rows if r.find_elements(By.LINK_TEXT, "KVM_CAP_USER_MEMORY2"))
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:3] == ["231", "KVM_CAP_USER_MEMORY2", "6.8"]
    row.find_element(By.LINK_TEXT, "KVM_SET_USER_MEMORY_REGION2").click()
    assert browser.current_url.endswith("reference/vm.html#api-kvm-set-user-memory-region2")
    assert in_view(browser, browser.find_element(By.ID, "kvm-set-user-memory-region2").find_element(By.TAG_NAME, "h2"))

    # An exit reason that a capability turns on.
    browser.back()
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
               if r.find_elements(By.LINK_TEXT, "KVM_CAP_X86_USER_SPACE_MSR"))
    row.find_element(By.LINK_TEXT, "KVM_EXIT_X86_RDMSR").click()
    assert browser.current_url.endswith("reference/run.html#exit-kvm-exit-x86-rdmsr")
    section = browser.find_element(By.ID, "kvm-exit-x86-rdmsr")
    assert "KVM_CAP_X86_USER_SPACE_MSR" in section.text


def test_search_finds_an_ioctl(browser, site, output_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get((site / "search.html").as_uri() + "?q=KVM_GET_NESTED_STATE")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "ul.search li a"))
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "ul.search li a")]
    assert any(href.split("#")[0].endswith("reference/x86.html") for href in links), links
    browser.save_screenshot(str(output_dir / "search.png"))
