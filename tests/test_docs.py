"""The Sphinx site builds without warnings, every cross-reference resolves, and
it contains the generated API text."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def anchor(name: str) -> str:
    return "api-" + name.lower().replace("_", "-")


@pytest.fixture(scope="module")
def model():
    from kvmspec.build import load_model
    return load_model(REPO)


def section(html: str, name: str) -> str:
    """The text of one ioctl or capability section, tags removed."""
    start = html.index(f'id="{anchor(name)}"')
    end = html.find('id="api-', start + 10)
    text = re.sub(r"<[^>]+>", " ", html[start:end if end > 0 else len(html)])
    return " ".join(text.split())


def reference_pages(site) -> dict[str, str]:
    """Every page of the API reference, by its path under reference/ ("x86/cpuid.html"),
    without the line-break opportunities (<wbr>) that docs/_ext puts in table cells."""
    return {p.relative_to(site / "reference").as_posix(): p.read_text().replace("<wbr>", "")
            for p in sorted((site / "reference").rglob("*.html"))}


def page_with(pages: dict[str, str], anchor_id: str) -> str:
    found = [name for name, html in pages.items() if f'id="{anchor_id}"' in html]
    assert len(found) == 1, (anchor_id, found)
    return found[0]


def test_every_ioctl_has_a_section_on_exactly_one_page_of_its_area(site, model):
    from kvmspec.emit.rst import area
    pages = reference_pages(site)
    for ioctl in model.ioctls:
        found = [name for name, html in pages.items() if f'id="{anchor(ioctl.name)}"' in html]
        if ioctl.emitted:
            assert len(found) == 1, (ioctl.name, found)
            # the area's page, or a page below it (x86.html, x86/nested-state.html)
            assert found[0].split("/")[0].removesuffix(".html") == area(ioctl), (ioctl.name, found)
        else:
            assert found == [], (ioctl.name, found)
    assert page_with(pages, "api-kvm-get-nested-state").startswith("x86/")
    assert page_with(pages, "api-kvm-create-vm") in ("system.html", "system/base.html")
    assert page_with(pages, "api-kvm-run").startswith("vcpu")
    assert page_with(pages, "api-kvm-set-device-attr").startswith("device")


def test_long_areas_are_split_by_spec_file_below_an_overview(site, model):
    """x86 has more ioctls than one page holds: x86.html lists its topics, each
    a page of its own (or parts of one) named after the spec file."""
    pages = reference_pages(site)
    overview = pages["x86.html"]
    assert 'href="x86/nested-state.html"' in overview
    assert "api-kvm-get-nested-state" in overview   # the topic's ioctls are listed, linked
    topics = {name.split("/")[1].split(".")[0].rsplit("-", 1)[0] if name.split("/")[1][:-5].rsplit("-", 1)[-1].isdigit()
              else name.split("/")[1][:-5] for name in pages if name.startswith("x86/")}
    x86_files = {f.path.rsplit("/", 1)[1][:-5] for f in model.files
                 if any(i.emitted and i.file is f and tuple(i.arch) == ("x86",) for i in model.ioctls)}
    assert x86_files <= topics, x86_files - topics


def test_no_reference_page_is_longer_than_the_budget(site):
    """The generated pages are cut to emit/site.py's budget (the browser test
    measures the rendered length)."""
    from kvmspec.emit.site import BUDGET
    for rst in (REPO / "generated/docs").rglob("*.rst"):
        body = rst.read_text().split("\n\n", 2)[-1]
        # one item larger than the budget has a page of its own; none is yet
        assert body.count("\n") < 2.2 * BUDGET, rst


def test_every_capability_has_a_section(site, model):
    pages = reference_pages(site)
    html = "".join(text for name, text in pages.items() if name.startswith("capabilities"))
    for cap in model.capabilities:
        assert (f'id="{anchor(cap.name)}"' in html) == cap.emitted, cap.name
    # each capability page lists its capabilities by number
    for name, text in pages.items():
        if name.startswith("capabilities/"):
            numbers = [int(n) for n in re.findall(r"Number<span[^>]*>:</span></dt>\s*<dd[^>]*><p>(\d+)", text)]
            assert numbers and numbers == sorted(numbers), name


def test_set_nested_state_section_says_what_it_validates_and_restores(site):
    pages = reference_pages(site)
    html = pages[page_with(pages, "api-kvm-set-nested-state")]
    text = section(html, "KVM_SET_NESTED_STATE")
    assert "rejected (EINVAL) by svm and silently ignored by vmx" in text
    assert "Restores state saved by KVM_GET_NESTED_STATE" in text
    start = html.index('id="api-kvm-set-nested-state"')
    assert re.search(r'href="[^"]*capabilities[^"]*#api-kvm-cap-nested-state"',
                     html[start:html.index("Architectures", start)])


def test_flag_tables_have_values_and_since(site):
    pages = reference_pages(site)
    html = pages[page_with(pages, "api-kvm-get-nested-state")]
    start = html.index('id="api-kvm-get-nested-state"')
    table = html[html.index("<table", start):html.index("</table>", html.index("KVM_STATE_NESTED_GIF_SET", start))]
    cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td.*?</td>", table, re.S)]
    row = cells.index("KVM_STATE_NESTED_GIF_SET")
    assert cells[row + 1:row + 3] == ["0x00000100", "5.8"]


def test_table_cells_hold_no_stray_lists(site):
    """A cell whose text looks like a list marker ("(56)", "-") shows that
    text, and an empty cell is empty: no table holds an empty list item."""
    for page in site.rglob("*.html"):
        html = page.read_text()
        for table in re.findall(r"<table.*?</table>", html, re.S):
            assert not re.search(r"<li>\s*(<p>\s*</p>)?\s*</li>", table), page
            assert not re.search(r"<td[^>]*>\s*<(ol|ul)\b", table), page
    pages = reference_pages(site)
    html = pages[page_with(pages, "constants")] if any('id="constants"' in h for h in pages.values()) else \
        "".join(pages.values())
    assert re.search(r"KVM_PMU_MASKED_ENTRY_UMASK_MASK_SHIFT</p></td>\s*<td><p>\(56\)</p></td>", html)


def test_exit_reasons_are_in_numeric_order(site, model):
    pages = reference_pages(site)
    run = pages["run.html"]
    table = run[run.index("<table"):run.index("</table>")]
    values = [int(v) for v in re.findall(r"</p></td>\s*<td><p>(-?\d+)</p></td>", table)]
    exits = [e for e in model.items if e.kind == "exit" and e.emitted]
    assert len(values) == len(exits) and values == sorted(values)
    order = [name for name in pages if name.startswith("exit-reasons/")]
    order.sort(key=lambda n: (len(n), n))   # numbers.html, numbers-2.html, ...
    sections = [int(v) for name in order for v in re.findall(r"Value<span[^>]*>:</span></dt>\s*<dd[^>]*><p>(-?\d+)", pages[name])]
    assert len(sections) == len(exits) and sections == sorted(sections)


def test_capability_index_links_capabilities_to_what_they_gate(site):
    import kvm_uapi
    pages = reference_pages(site)
    parts = {name: html for name, html in pages.items() if name.startswith("capability-index")}
    html = "".join(parts.values())
    for name in kvm_uapi.CAPABILITIES:
        assert re.search(rf'href="[^"]*capabilities[^"]*#{anchor(name)}"', html), name
    assert len(re.findall(r"<tr", html)) - len([h for h in parts.values() if "<table" in h]) == len(kvm_uapi.CAPABILITIES)

    def row(cap: str) -> str:
        start = html.index(f"{cap}</span></a>")
        return html[start:html.index("</tr>", start)]
    nested = row("KVM_CAP_NESTED_STATE")
    assert re.search(r'href="[^"]*x86[^"]*#api-kvm-get-nested-state"', nested)
    assert re.search(r'href="[^"]*x86[^"]*#api-kvm-set-nested-state"', nested)
    # a value the kernel writes only once the capability is enabled
    assert re.search(r'href="[^"]*values[^"]*#vs-kvm-vcpuevent-valid-flags"', row("KVM_CAP_EXCEPTION_PAYLOAD"))
    # an exit reason turned on by the capability
    assert re.search(r'href="[^"]*exit-reasons[^"]*#exit-kvm-exit-x86-rdmsr"', row("KVM_CAP_X86_USER_SPACE_MSR"))


def test_every_link_of_the_site_resolves(site):
    """Relative links point at pages that exist and at anchors those pages have."""
    pages = {p: p.read_text() for p in site.rglob("*.html")}
    ids = {p: set(re.findall(r'id="([^"]+)"', html)) for p, html in pages.items()}
    checked = 0
    for page, html in pages.items():
        for href in re.findall(r'href="([^"#:?]*)(?:\?[^"#]*)?(?:#([^"]*))?"', html):
            target_name, fragment = href
            if not target_name and not fragment:
                continue
            target = (page.parent / target_name).resolve() if target_name else page
            assert target.exists(), f"{page.relative_to(site)} links to missing {target_name}"
            if fragment and target.suffix == ".html":
                assert fragment in ids[target], f"{page.relative_to(site)} links to {target_name}#{fragment}"
            checked += 1
    assert checked > 2000


def test_versions_pages_list_what_releases_added_and_removed(site):
    pages = reference_pages(site)
    overview = pages["versions.html"]
    # the series in the overview's order, newest first, and within them the releases
    order = re.findall(r'href="(versions/[^"#]+)"', overview)
    page = "".join(pages[name] for name in dict.fromkeys(order))

    def release(version: str) -> str:
        start = page.index(f'<section id="linux-{version.replace(".", "-")}">')
        return " ".join(re.sub(r"<[^>]+>", " ", page[start:page.index("</section>", start)]).split())
    six_eight = release("6.8")
    assert six_eight.startswith("Linux 6.8 ¶ Added:")
    assert "KVM_SET_USER_MEMORY_REGION2 (ioctl)" in six_eight
    assert "KVM_CREATE_GUEST_MEMFD (ioctl)" in six_eight
    assert "Removed:" in six_eight and "KVM_ASSIGN_DEV_IRQ" in six_eight
    assert page.index('id="linux-6-18"') < page.index('id="linux-6-8"') < page.index('id="linux-4-19"')


def test_site_has_full_text_search(site):
    assert (site / "search.html").exists()
    index = (site / "searchindex.js").read_text()
    assert "kvm_get_nested_st" in index.lower()


def test_search_index_has_structs_and_fields_as_objects(site):
    """kvm_regs and kvm_regs.rip are search objects that lead to the section
    showing them."""
    import json
    index = json.loads((site / "searchindex.js").read_text().removeprefix("Search.setIndex(").removesuffix(")"))
    # {prefix: [[page, kind, priority, anchor, name]]}: kvm_regs.rip is "rip" under "kvm_regs"
    names = {f"{prefix}.{entry[4]}" if prefix else entry[4]: entry
             for prefix, entries in index["objects"].items() for entry in entries}
    for name, kind in (("kvm_regs", "struct"), ("kvm_regs.rip", "field"), ("kvm_nested_state.flags", "field"),
                       ("kvm_run.exit_reason", "field")):
        assert name in names, name
        entry = names[name]
        assert index["objnames"][str(entry[1])][1] == kind, (name, index["objnames"])
        page = index["docnames"][entry[0]]
        anchor_id = entry[3]
        assert f'id="{anchor_id}"' in (site / f"{page}.html").read_text(), (name, page, anchor_id)


def test_kernel_format_api_rst_is_offered_for_download(site):
    downloads = list(site.glob("_downloads/*/api.rst"))
    assert len(downloads) == 1
    assert downloads[0].read_bytes() == (REPO / "generated/Documentation/virt/kvm/api.rst").read_bytes()


def test_spec_language_guide_is_part_of_the_site(site):
    html = (site / "spec-language.html").read_text()
    assert "The spec language" in html
    assert "abi_exemption" in html


def test_compatibility_rules_page_lists_every_rule(site):
    from kvmspec.compat import RULES
    html = " ".join((site / "compat-rules.html").read_text().split())
    for rule in RULES.values():
        assert rule.id in html
        assert " ".join(rule.example.split())[:60] in html


def test_kernel_format_api_rst_is_plain_docutils(tmp_path):
    """The kernel builds api.rst with its own Sphinx set-up: it must not use
    this site's labels or roles, and must parse cleanly."""
    import docutils.core
    import docutils.utils
    text = (REPO / "generated/Documentation/virt/kvm/api.rst").read_text()
    assert ":ref:" not in text and ":doc:" not in text
    docutils.core.publish_doctree(text, settings_overrides={"halt_level": docutils.utils.Reporter.WARNING_LEVEL,
                                                            "report_level": 5})


def test_audit_docs_page_lists_every_kind_of_finding(site):
    from kvmspec.audit import KINDS, OUTSIDE_PREFIXES
    html = " ".join((site / "audit-docs.html").read_text().split())
    for kind in KINDS.values():
        assert f"{kind.id}</span></code></p></td> <td><p>{kind.severity}" in html, kind.id
    for prefix, _ in OUTSIDE_PREFIXES:
        assert prefix in html


def test_command_line_page_documents_exit_statuses(site):
    import re
    html = " ".join(re.sub(r"<[^>]+>", "", (site / "cli.html").read_text()).split())
    assert "exit status:" in html and "0 success" in html
    assert "kvmspec: internal error" in html
    assert "path:line:col: error: message" in html


def test_abi_history_page_lists_what_the_replay_finds(site):
    """The page is made from kvmspec compat --history of the spec: every finding, with its recorded reason."""
    import re
    from kvmspec.build import load_model
    from kvmspec.compat.history import replay
    history = replay(load_model(REPO))
    import html as entities

    def text(page: str) -> str:
        return " ".join(entities.unescape(re.sub(r"<[^>]+>", "", (site / page).read_text()))
                        .replace("\u2019", "'").split())
    html = text("abi-history.html")
    assert "KVM's ABI history as kvmspec sees it" in html
    assert f"{len(history.transitions)} transitions" in html
    # the findings are on one page per kernel series, each finding on the page of its release
    pages = {"linux-2-3": (None, (4,)), "linux-4-5": ((4,), (6,)), "linux-6-7": ((6,), None)}
    shown = {slug: text(f"abi-history/{slug}.html") for slug in pages}
    for release, finding in history.findings:
        exc = finding.explanation(release)
        assert exc is not None
        slug = next(s for s, (lo, hi) in pages.items()
                    if (lo is None or release.parts >= lo) and (hi is None or release.parts < hi))
        assert " ".join(exc.reason.split())[:40] in shown[slug], finding.subject
    assert sum(int(re.search(r"(\d+) break\(s\) in these releases", page).group(1))
               for page in shown.values()) == len(history.findings)
    assert not any("not explained: an error of the spec" in page for page in shown.values())


def test_table_cells_break_identifiers_at_underscores(site):
    """Long names in table cells may wrap after an underscore (<wbr>), and
    only in the text: links and ids keep their underscores."""
    html = (site / "reference/run.html").read_text()
    table = html[html.index("<table"):html.index("</table>")]
    assert "KVM_<wbr>EXIT_<wbr>X86_<wbr>RDMSR" in table
    assert not re.search(r"<[^>]*<wbr>", table)   # never inside a tag
    assert "<wbr>" not in html[:html.index("<table")]


def test_cut_keeps_order_and_budget_and_bonded_neighbours():
    from kvmspec.emit.site import cut
    sizes = {"a": 30, "b": 50, "c": 40, "d": 90, "e": 200, "f": 10}
    runs = cut(list(sizes), sizes.__getitem__, budget=100)
    assert [x for run in runs for x in run] == list(sizes)
    assert runs == [["a", "b"], ["c"], ["d"], ["e"], ["f"]]      # "e" alone exceeds the budget
    # "b" and "c" bonded (a save ioctl and its restore): they move on together
    bonded = cut(list(sizes), sizes.__getitem__, budget=100, bond=lambda x, y: (x, y) == ("b", "c"))
    assert bonded == [["a"], ["b", "c"], ["d"], ["e"], ["f"]]


def test_paginate_is_one_page_until_the_items_outgrow_the_budget():
    from kvmspec.emit.site import Group, paginate
    groups = [Group("one", "One", [1, 2]), Group("two", "Two", [3, 4, 5])]
    small = paginate("area", "Area", groups, size=lambda i: 10, budget=100)
    assert (small.name, small.items, small.children) == ("area", [1, 2, 3, 4, 5], [])
    big = paginate("area", "Area", groups, size=lambda i: 40, budget=100)
    assert big.items == []
    assert [(c.name, c.title, c.items) for c in big.children] == [
        ("area/one", "One", [1, 2]), ("area/two", "Two (part 1 of 2)", [3, 4]), ("area/two-2", "Two (part 2 of 2)", [5])]
