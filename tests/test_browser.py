"""The documentation site in a real browser: headless Chromium (Debian's
chromium and chromium-driver packages, installed by .ci/run) loads every page,
measures it, follows links by clicking them, runs the search, and leaves
screenshots in tests/_output/<test name>/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# A laptop's window; a "screen" is the height of its viewport.
WINDOW = (1280, 1000)
MAX_SCREENS = 15


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    # Reduced motion: the site then jumps to a link's target instead of
    # scrolling there smoothly, so a position is final once a page has loaded.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-prefers-reduced-motion", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
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


def page_with(site: Path, anchor_id: str) -> str:
    """The page of the site (relative path) that has an element with this id."""
    found = [p.relative_to(site).as_posix() for p in site.rglob("*.html") if f'id="{anchor_id}"' in p.read_text()]
    assert len(found) == 1, (anchor_id, found)
    return found[0]


# Everything inside the page's text column that reaches past it. An element
# inside a scrolling box is judged by that box, and a table may not need to
# scroll at all (code blocks may); negative margins that a theme gives headings
# on purpose do not count.
OVERFLOW = """
const main = document.querySelector('article[role=main]') || document.querySelector('[role=main]');
const box = main.getBoundingClientRect();
const px = v => parseFloat(v) || 0;
const found = [];
const describe = el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '')
    + ' "' + (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 50) + '"';
if (document.documentElement.scrollWidth > window.innerWidth + 1)
    found.push({what: 'the page scrolls sideways', over: document.documentElement.scrollWidth - window.innerWidth});
for (const el of main.querySelectorAll('*')) {
    let clipped = false;
    for (let a = el.parentElement; a && a !== main; a = a.parentElement)
        if (getComputedStyle(a).overflowX !== 'visible') { clipped = true; break; }
    if (clipped) continue;
    const style = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const left = r.left - Math.min(0, px(style.marginLeft)), right = r.right + Math.min(0, px(style.marginRight));
    const over = Math.max(right - box.right, box.left - left);
    if (over > 1) found.push({what: describe(el), over: Math.round(over)});
    if (style.overflowX !== 'visible' && el.querySelector('table') && el.scrollWidth > el.clientWidth + 1)
        found.push({what: 'a table scrolls: ' + describe(el), over: el.scrollWidth - el.clientWidth});
}
return {found: found, column: box.width,
        screens: document.documentElement.scrollHeight / window.innerHeight,
        sections: main.querySelectorAll('section section').length};
"""

# The page's own table of contents: shown, beside the text column, and inside the window.
TOC = """
const toc = document.querySelector('.toc-tree');
if (!toc) return {shown: false, why: 'no .toc-tree'};
const r = toc.getBoundingClientRect();
const main = document.querySelector('article[role=main]').getBoundingClientRect();
const style = getComputedStyle(toc);
return {shown: r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.display !== 'none'
               && r.top >= -1 && r.top < window.innerHeight && r.left >= main.right - 1 && r.right <= window.innerWidth + 1,
        why: JSON.stringify(r)};
"""


def site_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))


def test_every_page_fits_its_column_is_short_and_keeps_its_toc_in_view(browser, site, output_dir):
    """Every page of the site: nothing wider than the text column (the page
    never scrolls sideways, no table needs to), at most MAX_SCREENS screens
    long, and the page's table of contents still in view after scrolling down.
    The screenshots are for people to judge: each page's top, and the view
    half-way down for pages longer than a screen."""
    pages = site_pages(site)
    assert len(pages) > 50, pages
    problems, lengths, widest = [], {}, 0
    tocs = 0
    for page in pages:
        open_page(browser, site, page)
        shot = page.removesuffix(".html").replace("/", "__")
        result = browser.execute_script(OVERFLOW)
        lengths[page] = result["screens"]
        for item in result["found"]:
            widest = max(widest, item["over"])
            problems.append(f"{page}: {item['what']} is {item['over']}px wider than the {result['column']:.0f}px column")
        if result["screens"] > MAX_SCREENS:
            problems.append(f"{page}: {result['screens']:.1f} screens long")
        browser.save_screenshot(str(output_dir / f"{shot}.png"))
        if result["sections"] and page not in ("search.html", "genindex.html"):
            tocs += 1
            browser.execute_script("window.scrollTo(0, document.documentElement.scrollHeight / 2)")
            toc = browser.execute_script(TOC)
            if not toc["shown"]:
                problems.append(f"{page}: the table of contents is not in view half-way down ({toc['why']})")
            if result["screens"] > 1:
                browser.save_screenshot(str(output_dir / f"{shot}--middle.png"))
    longest = max(lengths, key=lengths.__getitem__)
    screen = browser.execute_script("return window.innerHeight")
    (output_dir / "summary.txt").write_text(
        f"{len(pages)} pages, {tocs} with a table of contents; longest {longest} "
        f"({lengths[longest]:.1f} screens of {screen}px); widest overflow {widest}px\n"
        + "".join(f"{lengths[p]:5.1f} {p}\n" for p in pages))
    assert problems == [], "\n".join(problems)
    assert tocs > 40


def test_get_nested_state_section_renders_with_tables_and_working_links(browser, site, output_dir):
    from selenium.webdriver.common.by import By
    page = page_with(site, "api-kvm-get-nested-state")
    assert page.startswith("reference/x86")
    open_page(browser, site, f"{page}#api-kvm-get-nested-state")
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
    assert browser.current_url.endswith(page_with(site, "api-kvm-cap-nested-state") + "#api-kvm-cap-nested-state")
    cap = browser.find_element(By.ID, "kvm-cap-nested-state")
    assert in_view(browser, cap.find_element(By.TAG_NAME, "h2"))
    browser.save_screenshot(str(output_dir / "kvm_cap_nested_state.png"))
    cap.find_element(By.LINK_TEXT, "KVM_SET_NESTED_STATE").click()
    assert browser.current_url.endswith(page_with(site, "api-kvm-set-nested-state") + "#api-kvm-set-nested-state")
    assert in_view(browser, browser.find_element(By.ID, "kvm-set-nested-state").find_element(By.TAG_NAME, "h2"))


def test_capability_index_renders_one_row_per_capability_with_working_links(browser, site, output_dir):
    import kvm_uapi
    from selenium.webdriver.common.by import By
    parts = [p for p in site_pages(site) if p.startswith("reference/capability-index")
             and "<table" in (site / p).read_text()]
    rows = 0
    for n, part in enumerate(parts):
        open_page(browser, site, part)
        table = browser.find_element(By.CSS_SELECTOR, "table")
        rows += len(table.find_elements(By.CSS_SELECTOR, "tbody tr"))
        header = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
        assert header == ["Number", "Capability", "Since", "Architectures", "Answer", "Opt-in", "Gates"]
        browser.save_screenshot(str(output_dir / f"capability_index_{n}.png"))
    assert rows == len(kvm_uapi.CAPABILITIES)

    def part_with(cap: str) -> str:
        return next(p for p in parts if f"{cap}</span></a>" in (site / p).read_text().replace("<wbr>", ""))

    open_page(browser, site, part_with("KVM_CAP_USER_MEMORY2"))
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
               if r.find_elements(By.LINK_TEXT, "KVM_CAP_USER_MEMORY2"))
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:3] == ["231", "KVM_CAP_USER_MEMORY2", "6.8"]
    row.find_element(By.LINK_TEXT, "KVM_SET_USER_MEMORY_REGION2").click()
    assert browser.current_url.endswith(page_with(site, "api-kvm-set-user-memory-region2") + "#api-kvm-set-user-memory-region2")
    assert in_view(browser, browser.find_element(By.ID, "kvm-set-user-memory-region2").find_element(By.TAG_NAME, "h2"))

    # An exit reason that a capability turns on.
    open_page(browser, site, part_with("KVM_CAP_X86_USER_SPACE_MSR"))
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
               if r.find_elements(By.LINK_TEXT, "KVM_CAP_X86_USER_SPACE_MSR"))
    row.find_element(By.LINK_TEXT, "KVM_EXIT_X86_RDMSR").click()
    assert browser.current_url.endswith(page_with(site, "exit-kvm-exit-x86-rdmsr") + "#exit-kvm-exit-x86-rdmsr")
    section = browser.find_element(By.ID, "kvm-exit-x86-rdmsr")
    assert "KVM_CAP_X86_USER_SPACE_MSR" in section.text


def search(browser, site: Path, query: str) -> list[tuple[str, str]]:
    """(text, link) of each result the site's search lists for the query."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get((site / "search.html").as_uri() + "?q=" + query)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ul.search li a"))
    return [(li.text, li.find_element(By.TAG_NAME, "a").get_attribute("href"))
            for li in browser.find_elements(By.CSS_SELECTOR, "ul.search li")]


def test_search_finds_an_ioctl(browser, site, output_dir):
    results = search(browser, site, "KVM_GET_NESTED_STATE")
    page = page_with(site, "api-kvm-get-nested-state")
    assert any(href.split("#")[0].endswith(page) for _, href in results), results
    browser.save_screenshot(str(output_dir / "search.png"))


@pytest.mark.parametrize("query, first, section", [
    ("kvm_regs", "kvm_regs", "KVM_GET_REGS"),          # a struct
    ("rip", "kvm_regs.rip", "KVM_GET_REGS"),            # a field of it
    ("exit_reason", "kvm_run.exit_reason", None),       # a field of kvm_run
])
def test_search_finds_structs_and_fields(browser, site, output_dir, query, first, section):
    """The first result is the struct or field itself, and it leads to the
    section that shows it."""
    from selenium.webdriver.common.by import By
    results = search(browser, site, query)
    browser.save_screenshot(str(output_dir / f"search_{query}.png"))
    text, href = results[0]
    assert text.split()[0] == first, results[:3]
    page, anchor = href.split("#")
    assert page.startswith(site.as_uri() + "/reference/")
    open_page(browser, site, page.removeprefix(site.as_uri() + "/") + "#" + anchor)
    target = browser.find_element(By.ID, anchor)
    assert in_view(browser, target)
    if section is not None:
        heading = browser.execute_script("return arguments[0].closest('section').querySelector('h2')", target)
        assert heading.text.startswith(section), heading.text


def test_architecture_pages_are_reached_from_the_index_and_lead_to_the_ioctl_sections(browser, site, output_dir):
    """From the reference's index to each architecture's page, to the list of its
    ioctls; on mips (3-bit _IOC direction) KVM_GET_ONE_REG has the number of its
    encoding, and its link leads to the ioctl's section."""
    from selenium.webdriver.common.by import By
    from test_arch_pages import ARCHES, ioc
    open_page(browser, site, "reference/index.html")
    browser.find_element(By.CSS_SELECTOR, "article").find_element(By.LINK_TEXT, "Architectures").click()
    assert browser.current_url.endswith("reference/architectures.html")
    links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "article table a")]
    assert links == list(ARCHES)
    for arch in ARCHES:
        open_page(browser, site, "reference/architectures.html")
        browser.find_element(By.CSS_SELECTOR, "article table").find_element(By.LINK_TEXT, arch).click()
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith(f"KVM on {arch}")
        browser.save_screenshot(str(output_dir / f"arch_{arch}.png"))
        browser.find_element(By.PARTIAL_LINK_TEXT, f"{arch}: ioctls").click()
        rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
                if r.find_elements(By.LINK_TEXT, "KVM_GET_ONE_REG")]
        assert len(rows) == 1, arch
        cells = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
        assert cells[2] == f"{ioc(arch, 'w', 0xAB, 16):#010x}", (arch, cells)
        if arch == "mips":
            browser.execute_script("arguments[0].scrollIntoView()", rows[0])
            browser.save_screenshot(str(output_dir / "arch_mips_ioctls.png"))
    rows[0].find_element(By.LINK_TEXT, "KVM_GET_ONE_REG").click()
    assert browser.current_url.endswith(page_with(site, "api-kvm-get-one-reg") + "#api-kvm-get-one-reg")
    assert in_view(browser, browser.find_element(By.ID, "kvm-get-one-reg").find_element(By.TAG_NAME, "h2"))
