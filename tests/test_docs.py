"""The Sphinx site builds without warnings and contains the generated API text."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
                             str(REPO / "docs"), str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr
    return out


def test_api_page_has_a_section_per_ioctl_and_capability(site):
    html = (site / "api.html").read_text()
    for name in ("KVM_GET_API_VERSION", "KVM_CREATE_VM", "KVM_CHECK_EXTENSION", "KVM_ENABLE_CAP",
                 "KVM_GET_NESTED_STATE", "KVM_SET_NESTED_STATE", "KVM_CAP_NESTED_STATE",
                 "KVM_CAP_EXCEPTION_PAYLOAD", "KVM_CAP_X86_TRIPLE_FAULT_EVENT"):
        assert f'id="api-{name.lower().replace("_", "-")}"' in html, name


def test_api_page_says_what_set_nested_state_validates(site):
    html = (site / "api.html").read_text()
    section = html[html.index('id="api-kvm-set-nested-state"'):]
    section = " ".join(section[:section.index('id="api-', 10)].split())
    assert "rejected (EINVAL) by svm and silently ignored by vmx" in section
    assert "Restores state saved by KVM_GET_NESTED_STATE" in section


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


def test_capability_index_links_capabilities_to_the_ioctls_they_gate(site):
    import kvm_uapi
    html = (site / "capabilities.html").read_text()
    for name in kvm_uapi.CAPABILITIES:
        assert f'href="api.html#api-{name.lower().replace("_", "-")}"' in html, name
    row = html[html.index("KVM_CAP_NESTED_STATE</span></a>"):]
    row = row[:row.index("</tr>")]
    assert 'href="api.html#api-kvm-get-nested-state"' in row
    assert 'href="api.html#api-kvm-set-nested-state"' in row


def test_command_line_page_documents_exit_statuses(site):
    import re
    html = " ".join(re.sub(r"<[^>]+>", "", (site / "cli.html").read_text()).split())
    assert "exit status:" in html and "0 success" in html
    assert "kvmspec: internal error" in html
    assert "path:line:col: error: message" in html
