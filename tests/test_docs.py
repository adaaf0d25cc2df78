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


def test_every_ioctl_has_a_section_on_exactly_one_area_page(site, model):
    pages = {p.name: p.read_text() for p in (site / "reference").glob("*.html")}
    for ioctl in model.ioctls:
        found = [name for name, html in pages.items() if f'id="{anchor(ioctl.name)}"' in html]
        if ioctl.emitted:
            assert len(found) == 1, (ioctl.name, found)
        else:
            assert found == [], (ioctl.name, found)
    assert 'id="api-kvm-get-nested-state"' in pages["x86.html"]
    assert 'id="api-kvm-create-vm"' in pages["system.html"]
    assert 'id="api-kvm-run"' in pages["vcpu.html"]
    assert 'id="api-kvm-set-device-attr"' in pages["device.html"]


def test_every_capability_has_a_section(site, model):
    html = (site / "reference/capabilities.html").read_text()
    for cap in model.capabilities:
        assert (f'id="{anchor(cap.name)}"' in html) == cap.emitted, cap.name


def test_set_nested_state_section_says_what_it_validates_and_restores(site):
    text = section((site / "reference/x86.html").read_text(), "KVM_SET_NESTED_STATE")
    assert "rejected (EINVAL) by svm and silently ignored by vmx" in text
    assert "Restores state saved by KVM_GET_NESTED_STATE" in text
    html = (site / "reference/x86.html").read_text()
    start = html.index('id="api-kvm-set-nested-state"')
    assert 'href="capabilities.html#api-kvm-cap-nested-state"' in html[start:html.index("Architectures", start)]


def test_flag_tables_have_values_and_since(site):
    html = (site / "reference/x86.html").read_text()
    start = html.index('id="api-kvm-get-nested-state"')
    table = html[html.index("<table", start):html.index("</table>", html.index("KVM_STATE_NESTED_GIF_SET", start))]
    cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td.*?</td>", table, re.S)]
    row = cells.index("KVM_STATE_NESTED_GIF_SET")
    assert cells[row + 1:row + 3] == ["0x00000100", "5.8"]


def test_capability_index_links_capabilities_to_what_they_gate(site):
    import kvm_uapi
    html = (site / "reference/capability-index.html").read_text()
    for name in kvm_uapi.CAPABILITIES:
        assert re.search(rf'href="capabilities.html#{anchor(name)}"', html), name

    def row(cap: str) -> str:
        start = html.index(f"{cap}</span></a>")
        return html[start:html.index("</tr>", start)]
    nested = row("KVM_CAP_NESTED_STATE")
    assert 'href="x86.html#api-kvm-get-nested-state"' in nested
    assert 'href="x86.html#api-kvm-set-nested-state"' in nested
    # a value the kernel writes only once the capability is enabled
    assert 'href="values.html#vs-kvm-vcpuevent-valid-flags"' in row("KVM_CAP_EXCEPTION_PAYLOAD")
    # an exit reason turned on by the capability
    assert 'href="run.html#exit-kvm-exit-x86-rdmsr"' in row("KVM_CAP_X86_USER_SPACE_MSR")


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


def test_versions_page_lists_what_releases_added_and_removed(site):
    page = (site / "reference/versions.html").read_text()

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
    html = " ".join(entities.unescape(re.sub(r"<[^>]+>", "", (site / "abi-history.html").read_text()))
                    .replace("\u2019", "'").split())
    assert "KVM's ABI history as kvmspec sees it" in html
    assert f"{len(history.transitions)} transitions" in html
    for release, finding in history.findings:
        exc = finding.explanation(release)
        assert exc is not None
        assert " ".join(exc.reason.split())[:40] in html, finding.subject
    assert "not explained: an error of the spec" not in html
