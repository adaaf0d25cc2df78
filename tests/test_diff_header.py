"""`kvmspec diff-header`: the spec against a tree of kernel headers, names both ways plus every fact."""

from __future__ import annotations

import shutil

import pytest

from conftest import REPO, run_kvmspec

pytestmark = pytest.mark.slow


def system_headers_present() -> None:
    if not (shutil.which("gcc") and (REPO / "generated").is_dir()):
        pytest.skip("gcc is needed")
    from pathlib import Path
    if not Path("/usr/include/linux/kvm.h").exists():
        pytest.skip("the kernel's uapi headers are not installed (Debian: linux-libc-dev)")


def test_spec_covers_the_installed_headers_completely():
    system_headers_present()
    result = run_kvmspec("diff-header", "/usr/include", cwd=REPO)
    assert result.status == 0, result.out + result.err
    for kind in ("macros", "records", "enumerators"):
        line = next(l for l in result.out.splitlines() if l.strip().startswith(kind))
        assert "0 missing from the spec, 0 only in the spec" in line, line
    assert result.out.count(": 0 difference(s)") == 2
    assert result.out.rstrip().endswith("no differences")


def copy_of_system_headers(tmp_path):
    tree = tmp_path / "include"
    shutil.copytree("/usr/include/linux", tree / "linux")
    shutil.copytree("/usr/include/x86_64-linux-gnu/asm", tree / "asm")
    shutil.copytree("/usr/include/asm-generic", tree / "asm-generic")
    return tree


def test_names_and_values_that_disagree_are_reported(tmp_path):
    system_headers_present()
    tree = copy_of_system_headers(tmp_path)
    kvm_h = tree / "linux/kvm.h"
    text = kvm_h.read_text()
    text = text.replace("#define KVM_CAP_NESTED_STATE 157\n", "#define KVM_CAP_NESTED_STATE 157\n"
                                                              "#define KVM_CAP_INVENTED 999\n")
    text = text.replace("#define KVM_CAP_HLT\t  1\n", "")
    text = text.replace("#define KVM_CAP_EXCEPTION_PAYLOAD 164", "#define KVM_CAP_EXCEPTION_PAYLOAD 165")
    kvm_h.write_text(text)
    result = run_kvmspec("diff-header", str(tree), "--abi", "x86_64", cwd=REPO)
    assert result.status == 1
    assert "missing from the spec (macro): KVM_CAP_INVENTED" in result.out
    assert "only in the spec (macro): KVM_CAP_HLT" in result.out
    assert "differs: 'value KVM_CAP_EXCEPTION_PAYLOAD 164' != 'value KVM_CAP_EXCEPTION_PAYLOAD 165'" in result.out


def test_a_directory_without_headers_is_a_usage_error(tmp_path):
    result = run_kvmspec("diff-header", str(tmp_path), cwd=REPO)
    assert result.status == 2
    assert "no linux/kvm.h here" in result.err


def test_names_a_stable_tree_has_from_later_mainline_releases_are_backports(tmp_path):
    """A stable release (X.Y.Z, Z > 0) may carry what mainline added later: such names are
    reported as backports and not counted; in an X.Y.0 tree the same name is missing."""
    system_headers_present()
    tree = copy_of_system_headers(tmp_path)
    kvm_h = tree / "linux/kvm.h"
    kvm_h.write_text(kvm_h.read_text().replace("#define KVM_CAP_NESTED_STATE 157\n",
                                               "#define KVM_CAP_NESTED_STATE 157\n"
                                               "#define KVM_CAP_ARM_SEA_TO_USER 245\n"))
    version_h = tree / "linux/version.h"
    for sublevel, status in ((50, 0), (0, 1)):
        version_h.write_text(f"#define LINUX_VERSION_CODE {(6 << 16) + (1 << 8) + sublevel}\n")
        result = run_kvmspec("diff-header", str(tree), "--abi", "x86_64", cwd=REPO)
        assert result.status == status, result.out + result.err
        backport = "stable backport, not counted (macro): KVM_CAP_ARM_SEA_TO_USER (mainline 6.19)"
        missing = "missing from the spec (macro): KVM_CAP_ARM_SEA_TO_USER"
        assert (backport in result.out, missing in result.out) == ((True, False) if sublevel else (False, True))


def test_an_installed_tree_that_includes_linux_compiler_h_is_compared(tmp_path):
    """3.x installed headers still include <linux/compiler.h> and use __user; the shim
    stands in for it, so the tree is compared instead of failing to preprocess."""
    system_headers_present()
    tree = copy_of_system_headers(tmp_path)
    kvm_h = tree / "linux/kvm.h"
    text = kvm_h.read_text().replace("#include <linux/types.h>\n",
                                     "#include <linux/types.h>\n#include <linux/compiler.h>\n", 1)
    kvm_h.write_text(text.replace("void *dirty_bitmap; /* one bit per page */",
                                  "void __user *dirty_bitmap; /* one bit per page */"))
    assert "<linux/compiler.h>" in kvm_h.read_text() and "__user" in kvm_h.read_text()
    assert not (tree / "linux/compiler.h").exists()
    result = run_kvmspec("diff-header", str(tree), "--abi", "x86_64", cwd=REPO)
    assert "linux/compiler.h' file not found" not in result.out + result.err
    assert "agree on" in result.out and ": 0 difference(s)" in result.out, result.out + result.err


def _tree_of_release(tmp_path, release: str, broken: dict[str, str]):
    """The spec's own x86 headers of `release` as an installed tree (so that nothing else
    differs), with the values in `broken` spelled as given instead."""
    ours = tmp_path / f"ours-{release}"
    assert run_kvmspec("headers", "--release", release, "--arch", "x86", "--out", str(ours), cwd=REPO).status == 0
    tree = copy_of_system_headers(tmp_path / release)
    shutil.copy(ours / "asm/kvm.h", tree / "asm/kvm.h")
    lines = (ours / "linux/kvm.h").read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "#define" and parts[1] in broken:
            lines[i] = f"#define {parts[1]} {broken[parts[1]]}\n"
    assert sum(broken.get(l.split()[1]) is not None for l in lines if l.startswith("#define ") and len(l.split()) > 2) \
        == len(broken)
    (tree / "linux/kvm.h").write_text("".join(lines))
    major, minor = map(int, release.split("."))
    (tree / "linux/version.h").write_text(f"#define LINUX_VERSION_CODE {(major << 16) + (minor << 8)}\n")
    return tree


def test_a_recorded_header_defect_is_known_and_an_unrecorded_one_is_a_finding(tmp_path):
    """5.11 and 5.12 spelled KVM_DIRTY_GFN_F_DIRTY and _RESET with the kernel-only BIT(), which
    the spec records (header_defects:). In a 5.11 tree those lines are listed as known defects
    of the kernel's header and not counted; the same defect on a value without a record, or
    in a release outside the recorded range, is a finding."""
    system_headers_present()
    defects = {"KVM_DIRTY_GFN_F_DIRTY": "BIT(0)", "KVM_DIRTY_GFN_F_RESET": "BIT(1)"}

    known = run_kvmspec("diff-header", str(_tree_of_release(tmp_path, "5.11", defects)), "--abi", "x86_64", cwd=REPO)
    assert known.status == 0, known.out + known.err
    assert "known defect of the kernel's header at 5.11: KVM_DIRTY_GFN_F_DIRTY was written BIT(0)" in known.out
    assert "known defect of the kernel's header at 5.11: KVM_DIRTY_GFN_F_RESET was written BIT(1)" in known.out
    assert "does not compile" not in known.out and known.out.rstrip().endswith("no differences")

    unrecorded = run_kvmspec("diff-header", str(_tree_of_release(tmp_path / "u", "5.11", {
        **defects, "KVM_DIRTY_GFN_F_MASK": "(BIT(0) | BIT(1))"})), "--abi", "x86_64", cwd=REPO)
    assert unrecorded.status == 1, unrecorded.out + unrecorded.err
    assert "differs: does not compile with the tree: value KVM_DIRTY_GFN_F_MASK" in unrecorded.out
    assert "known defect of the kernel's header at 5.11: KVM_DIRTY_GFN_F_DIRTY" in unrecorded.out
    assert unrecorded.out.rstrip().endswith("1 finding(s)")

    outside = run_kvmspec("diff-header", str(_tree_of_release(tmp_path, "5.13", defects)), "--abi", "x86_64", cwd=REPO)
    assert outside.status == 1, outside.out + outside.err
    assert "differs: does not compile with the tree: value KVM_DIRTY_GFN_F_DIRTY" in outside.out
    assert "known defect" not in outside.out
    assert outside.out.rstrip().endswith("2 finding(s)")


def test_the_spec_headers_of_a_defective_release_compile(tmp_path):
    """The spec's header of a release whose kernel header used BIT_ULL/GENMASK_ULL writes the
    compilable spelling, with the same values."""
    system_headers_present()
    ours = tmp_path / "ours"
    assert run_kvmspec("headers", "--release", "6.7", "--arch", "x86", "--out", str(ours), cwd=REPO).status == 0
    text = (ours / "asm/kvm.h").read_text() + (ours / "linux/kvm.h").read_text()
    assert "BIT_ULL(" not in text.replace("_BITULL(", "") and "GENMASK_ULL(" not in text
    assert "KVM_PMU_MASKED_ENTRY_EXCLUDE" in text and "KVM_EXIT_HYPERCALL_LONG_MODE" in text


def test_a_target_the_default_clang_lacks_uses_a_versioned_clang(monkeypatch):
    # Debian 12's clang (14) has no LoongArch; clang-16 has.
    import subprocess
    from types import SimpleNamespace
    from kvmspec import conformance

    installed = {"clang": "/usr/bin/clang", "clang-16": "/usr/bin/clang-16"}
    knows = {"/usr/bin/clang": {"riscv64-linux-gnu"}, "/usr/bin/clang-16": {"riscv64-linux-gnu", "loongarch64-linux-gnu"}}

    def run(cmd, **kwargs):
        target = next(a.split("=", 1)[1] for a in cmd if a.startswith("--target="))
        return SimpleNamespace(returncode=0 if target in knows[cmd[0]] else 1, stdout="", stderr="")

    monkeypatch.setattr(conformance.shutil, "which", installed.get)
    monkeypatch.setattr(subprocess, "run", run)
    conformance._clang.cache_clear()
    try:
        assert conformance._clang() == "/usr/bin/clang"
        assert conformance._clang("riscv64-linux-gnu") == "/usr/bin/clang"
        assert conformance._clang("loongarch64-linux-gnu") == "/usr/bin/clang-16"
        with pytest.raises(conformance.NoCompiler, match="sparc64"):
            conformance._clang("sparc64-linux-gnu")
    finally:
        conformance._clang.cache_clear()


# ------------------------------------------------- other architectures: base headers, releases before KVM

def need_cross_base(abi) -> None:
    from kvmspec.conformance import NoCompiler, _clang, base_include
    if base_include(abi) is None:
        pytest.skip(f"neither /usr/{abi.debian}/include nor its stand-in /usr/{abi.stand_in}/include is installed")
    try:
        _clang(abi.triple)
    except NoCompiler as exc:
        pytest.skip(str(exc))


def spec_headers_tree(tmp_path, arch: str, release: str):
    """The spec's own headers of `arch` at `release`, as an installed tree that says its release."""
    tree = tmp_path / f"{arch}-{release}"
    assert run_kvmspec("headers", "--release", release, "--arch", arch, "--out", str(tree), cwd=REPO).status == 0
    major, minor = (int(p) for p in release.split("."))
    (tree / "linux/version.h").write_text(f"#define LINUX_VERSION_CODE {(major << 16) + (minor << 8)}\n")
    return tree


def test_loongarch_is_compared_without_abi_through_the_stand_in_base_headers(tmp_path):
    """Debian has no loongarch cross headers; diff-header takes the stand-in's base headers
    (riscv64's asm-generic ones) by itself, as `kvmspec check` does, instead of asking for --abi."""
    from kvmspec.layout import LOONGARCH64
    need_cross_base(LOONGARCH64)
    tree = spec_headers_tree(tmp_path, "loongarch", "6.12")
    same = run_kvmspec("diff-header", str(tree), "--arch", "loongarch", cwd=REPO)
    assert same.status == 0, same.out + same.err
    assert "loongarch64 " in same.out and ": 0 difference(s)" in same.out
    # ... and really compared: a changed value of the tree is reported.
    asm = tree / "asm/kvm.h"
    text = asm.read_text()
    assert "#define KVM_LOONGARCH_VCPU_CPUCFG\t0\n" in text
    asm.write_text(text.replace("#define KVM_LOONGARCH_VCPU_CPUCFG\t0\n", "#define KVM_LOONGARCH_VCPU_CPUCFG\t7\n"))
    changed = run_kvmspec("diff-header", str(tree), "--arch", "loongarch", cwd=REPO)
    assert changed.status == 1, changed.out + changed.err
    assert "'value KVM_LOONGARCH_VCPU_CPUCFG 0' != 'value KVM_LOONGARCH_VCPU_CPUCFG 7'" in changed.out


def pre_kvm_tree(tmp_path, release_code: int):
    """A tree of a release whose architecture had no KVM yet: a linux/kvm.h and a stray
    asm/kvm.h of another architecture (Zig's 4.19 riscv tree carries arm's)."""
    tree = tmp_path / "pre-kvm"
    (tree / "linux").mkdir(parents=True)
    (tree / "asm").mkdir()
    (tree / "linux/kvm.h").write_text("#include <asm/kvm.h>\n#define KVMIO 0xAE\n")
    (tree / "asm/kvm.h").write_text("#define __ARM_KVM_H__\nstruct kvm_regs { unsigned long uregs[18]; };\n")
    (tree / "linux/version.h").write_text(f"#define LINUX_VERSION_CODE {release_code}\n")
    return tree


@pytest.mark.parametrize("arch, release, first", [("riscv", "4.19", "5.16"), ("loongarch", "6.3", "6.7")])
def test_a_release_before_the_architecture_had_kvm_has_nothing_to_compare(tmp_path, arch, release, first):
    major, minor = (int(p) for p in release.split("."))
    tree = pre_kvm_tree(tmp_path, (major << 16) + (minor << 8))
    result = run_kvmspec("diff-header", str(tree), "--arch", arch, cwd=REPO)
    assert result.status == 0, result.out + result.err
    assert result.out.splitlines() == [
        f"{tree}: Linux {release} has no KVM for {arch} (its asm/kvm.h came in {first}): nothing to compare"]
    # --release decides as linux/version.h does
    assert run_kvmspec("diff-header", str(tree), "--arch", arch, "--release", release, cwd=REPO).out == result.out


def test_the_first_release_with_the_architectures_kvm_is_compared(tmp_path):
    """At riscv's first KVM release the same tree is compared, and its lack of riscv's
    items is reported."""
    from kvmspec.layout import RISCV64
    need_cross_base(RISCV64)
    tree = pre_kvm_tree(tmp_path, (5 << 16) + (16 << 8))
    result = run_kvmspec("diff-header", str(tree), "--arch", "riscv", cwd=REPO)
    assert result.status == 1, result.out + result.err
    assert "nothing to compare" not in result.out
    assert "only in the spec (record): kvm_riscv_config" in result.out


def test_first_arch_release_is_when_each_architectures_kvm_came():
    from kvmspec.build import load_model
    from kvmspec.view import first_arch_release
    model = load_model(REPO)
    # riscv KVM was merged for 5.16, loongarch KVM for 6.7, arm64 KVM for 3.11.
    assert {a: first_arch_release(model, a).release for a in ("riscv", "loongarch", "arm64")} == \
        {"riscv": "5.16", "loongarch": "6.7", "arm64": "3.11"}
