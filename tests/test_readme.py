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


def readme_blocks(heading: str) -> list[str]:
    """The fenced code blocks of one README section, in order."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index(heading):]
    section = section[:section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    return re.findall(r"^```[a-z]*\n(.*?)^```$", section, re.M | re.S)


def git(root, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(root), "PATH": "/usr/bin:/bin"})


def test_emitting_the_flag_gives_the_verdict_the_readme_shows_and_the_remedy_passes(scratch, capsys):
    emits, verdict, compat_verdict, opt_in, capability = readme_blocks("### Saying that the kernel emits it")
    git(scratch.root, "init", "-q")
    git(scratch.root, "add", "spec")
    git(scratch.root, "commit", "-q", "-m", "before")
    add_flag(scratch, "0x00000200")
    old_entry = emits.replace("          - KVM_STATE_NESTED_GPAT_VALID\n", "")
    scratch.replace(NESTED, old_entry, emits)

    result = scratch.run(capsys=capsys)
    assert result.status == 1, result.out + result.err
    for line in verdict.splitlines():                 # validate refuses it
        assert line + "\n" in result.err
    result = scratch.run("compat", capsys=capsys)      # and compat judges the change the same way
    assert result.status == 1, result.out + result.err
    for line in compat_verdict.splitlines():
        assert line + "\n" in result.out

    scratch.replace(NESTED, emits, old_entry + opt_in)
    scratch.replace(NESTED, "items:\n  - capability: KVM_CAP_NESTED_STATE\n",
                    "items:\n" + capability + "\n  - capability: KVM_CAP_NESTED_STATE\n")
    result = scratch.run(capsys=capsys)
    assert result.status == 0, result.out + result.err
    assert "compatibility with HEAD (kvmspec compat):\n  0 error(s), 0 warning(s)\n" in result.out
    header = (scratch.root / "generated/include/uapi/linux/kvm.h").read_text()
    assert re.search(r"^#define KVM_CAP_NESTED_GPAT\s+252$", header, re.M)


def test_every_package_of_the_tool_is_installed():
    """`pip install .` (not -e) installs only the packages pyproject.toml lists: each
    directory of the tool with an __init__.py must be among them (kvmspec.build and
    kvmspec.compat once were not)."""
    import tomllib
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    root = REPO / config["package-dir"]["kvmspec"]
    found = {"kvmspec" + "".join("." + part for part in init.parent.relative_to(root).parts)
             for init in root.rglob("__init__.py") if "__pycache__" not in init.parts}
    assert found <= listed, sorted(found - listed)
