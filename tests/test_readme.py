"""The README's worked example does what the README says."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO

NESTED = "spec/x86/nested-state.yaml"
NEW_FLAG = """      - name: KVM_STATE_NESTED_GPAT_VALID
        value: {value}
        since: "7.1"
        implementations: [svm]
        doc: |
          The header carries the guest PAT of the nested guest.
"""
ANCHOR = "          events are held until the guest hypervisor executes STGI.\n"


def add_flag(scratch, value: str) -> None:
    scratch.replace(NESTED, ANCHOR, ANCHOR + NEW_FLAG.format(value=value))


def test_readme_shows_the_same_yaml():
    readme = (REPO / "README.md").read_text()
    assert NEW_FLAG.format(value="0x00000200") in readme


def test_new_flag_reaches_every_output(scratch, capsys):
    add_flag(scratch, "0x00000200")
    result = scratch.run(capsys=capsys)
    assert result.status == 0, result.err
    gen = scratch.root / "generated"
    asm = (gen / "arch/x86/include/uapi/asm/kvm.h").read_text()
    assert "#define KVM_STATE_NESTED_GPAT_VALID\t0x00000200\n" in asm
    rst = (gen / "Documentation/virt/kvm/api.rst").read_text()
    assert re.search(r"KVM_STATE_NESTED_GPAT_VALID\s+0x00000200\s+7\.1\s+\[svm\]", rst)
    assert "KVM_STATE_NESTED_GPAT_VALID" in (gen / "tests/kvm_conformance.c").read_text()
    assert "'KVM_STATE_NESTED_GPAT_VALID': 512" in (gen / "tests/test_kvm_uapi.py").read_text()
    probe = subprocess.run(
        [sys.executable, "-c",
         "import kvm_uapi as k; print(int(k.kvm_nested_state_flags.KVM_STATE_NESTED_GPAT_VALID),"
         " int(k.KVM_STATE_NESTED_GPAT_VALID))"],
        env={"PYTHONPATH": str(gen / "python")}, capture_output=True, text=True)
    assert probe.stdout.split() == ["512", "512"], probe.stderr


def test_overlapping_flag_gives_the_message_the_readme_shows(scratch, capsys):
    add_flag(scratch, "0x00000100")
    result = scratch.run(capsys=capsys)
    assert result.status == 1
    readme = (REPO / "README.md").read_text()
    shown = re.search(r"^(spec/x86/nested-state\.yaml:\d+:\d+: error: flag KVM_STATE_NESTED_GPAT_VALID.*\n.*hint.*)$",
                      readme, re.M)
    assert shown, "README lost its example message"
    assert shown.group(1) in result.err
