"""Architecture and release as dimensions of the model: ABIs, per-architecture
definitions of one name, views of a release, `kvmspec headers` and the trees
diff-header reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, run_kvmspec
from kvmspec.layout import ABIS, ARM64, I386, MIPS64, PPC64, PPC64LE, S390X, X86_64, abis_of, ioc

SYSTEM_KVM_H = Path("/usr/include/linux/kvm.h")


def need_clang(abi=X86_64) -> None:
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    if abi.arch != "x86" and not Path(f"/usr/{abi.debian}/include/linux/kvm.h").is_file():
        pytest.skip(f"Debian's {abi.arch} cross headers are not installed (/usr/{abi.debian}/include)")


def clang_value(abi, include: str, expression: str) -> int:
    """What clang --target makes of a C expression with a header tree's linux/kvm.h."""
    from kvmspec.conformance import cross_base
    source = f"#include <linux/kvm.h>\nunsigned long long kvmspec_probe = (unsigned long long)({expression});\n"
    flags = [] if abi.arch == "x86" else cross_base(abi)
    result = subprocess.run(["clang", f"--target={abi.triple}", f"-I{include}", *flags, "-S", "-emit-llvm", "-o",
                             "-", "-x", "c", "-"], input=source, capture_output=True, text=True, check=True)
    return int(re.search(r"@kvmspec_probe = .*?global i64 (-?\d+)", result.stdout).group(1)) % (1 << 64)


# ------------------------------------------------------------------ ABIs as data

def test_every_architecture_has_its_abis():
    assert {abi.arch for abi in ABIS} == {"x86", "arm64", "riscv", "s390", "ppc", "mips", "loongarch"}
    assert abis_of("x86") == (X86_64, I386)
    assert abis_of("ppc") == (PPC64LE, PPC64)
    assert S390X.big_endian and PPC64.big_endian and not PPC64LE.big_endian


def test_ioctl_encodings_follow_each_architecture():
    # _IOR(0xAE, 0x81, 144 bytes): 2 direction bits on x86 and arm64, 3 on powerpc and mips
    assert ioc("r", 0xAE, 0x81, 144, X86_64) == 0x8090AE81
    assert ioc("r", 0xAE, 0x81, 144, ARM64) == 0x8090AE81
    assert ioc("r", 0xAE, 0x81, 144, PPC64LE) == 0x4090AE81
    assert ioc("none", 0xAE, 0x01, 0, MIPS64) == 0x2000AE01
    assert ioc("w", 0xAE, 0x01, 8, MIPS64) == 0x8008AE01


@pytest.mark.slow
@pytest.mark.parametrize("abi", [PPC64LE, MIPS64, ARM64, S390X], ids=lambda a: a.name)
def test_ioctl_numbers_equal_the_kernel_headers_of_other_architectures(abi):
    """Ioctls on types every architecture lays out alike: the model's number for the ABI
    is what clang makes of Debian's 6.1 headers of that architecture."""
    need_clang(abi)
    from kvmspec.build import load_model
    from kvmspec.model import Version
    model = load_model(REPO)
    base = f"/usr/{abi.debian}/include"
    checked = 0
    for ioctl in model.ioctls:
        if ioctl.name not in ("KVM_GET_API_VERSION", "KVM_CREATE_VCPU", "KVM_SET_USER_MEMORY_REGION",
                              "KVM_IRQ_LINE_STATUS", "KVM_GET_DIRTY_LOG", "KVM_SET_GSI_ROUTING",
                              "KVM_GET_ONE_REG", "KVM_SET_DEVICE_ATTR", "KVM_CHECK_EXTENSION"):
            continue
        assert ioctl.since <= Version.parse("6.1")
        assert ioctl.number_on(abi) == clang_value(abi, base, ioctl.name), ioctl.name
        checked += 1
    assert checked == 9


# ------------------------------------------------------------------ one name, several architectures

# A second struct kvm_regs in the arm64 header: one architecture may not define a name twice.
ARM64_REGS_AGAIN = """
  - struct: kvm_regs
    since: "3.11"
    doc: A second definition.
    fields:
      - name: regs
        type: __u64
        array: 34
        doc: General-purpose registers, sp, pc and pstate.
"""


def test_architectures_define_the_same_name_each_their_own_way(scratch, capsys):
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 0, result.err
    from kvmspec.build import load_model
    model = load_model(scratch.root)
    x86_regs, arm64_regs = model.lookup("kvm_regs", "x86"), model.lookup("kvm_regs", "arm64")
    assert x86_regs.header == "x86" and arm64_regs.header == "arm64"
    # sizes as clang lays out the kernel's headers (aarch64: ptrace registers, fp_regs 16-aligned)
    assert arm64_regs.size(ARM64) == 864 and x86_regs.size(X86_64) == 144
    get_regs = model.by_name["KVM_GET_REGS"]
    # the shared ioctl is encoded with each architecture's own struct
    assert get_regs.number_on(X86_64) == ioc("r", 0xAE, 0x81, 144, X86_64)
    assert get_regs.number_on(ARM64) == ioc("r", 0xAE, 0x81, 864, ARM64)
    assert get_regs.number_on(S390X) == ioc("r", 0xAE, 0x81, 128, S390X)   # s390's 16 general registers
    # an architecture whose header does not define the struct cannot expand the ioctl
    if model.lookup("kvm_regs", "ppc") is None:
        assert get_regs.number_on(PPC64) is None
    scratch.run("generate", capsys=capsys)
    arm64_h = scratch.read("generated/arch/arm64/include/uapi/asm/kvm.h")
    assert "struct kvm_regs {" in arm64_h and "struct user_fpsimd_state fp_regs;" in arm64_h
    assert "fp_regs" not in scratch.read("generated/arch/x86/include/uapi/asm/kvm.h")


def test_one_architecture_may_not_define_a_name_twice(scratch, capsys):
    rel = "spec/arm64/registers.yaml"
    scratch.write(rel, scratch.read(rel).rstrip("\n") + "\n" + ARM64_REGS_AGAIN)
    line = len(scratch.read(rel).splitlines()) - 7
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    assert f"{rel}:{line}:13: error: duplicate name 'kvm_regs'" in result.err


# ------------------------------------------------------------------ releases

def test_a_view_has_the_values_fields_and_headers_of_its_release():
    from kvmspec.build import load_model
    from kvmspec.model import Version
    from kvmspec.view import View
    model = load_model(REPO)
    old, new = View(model, Version.parse("6.1"), "x86"), View(model, None, "x86")
    by_name_old = {i.name: i for i in old.items}
    by_name_new = {i.name: i for i in new.items}
    # a value that grew
    nr_max = lambda view: next(v for v in view["sev_cmd_id"].values if v.name == "KVM_SEV_NR_MAX").expr
    assert nr_max(by_name_old) == "22" and nr_max(by_name_new) == "104"
    by_name_619 = {i.name: i for i in View(model, Version.parse("6.19"), "x86").items}
    assert nr_max(by_name_619) == "103"
    # a record that grew a field: the SVM nested-state header took gPAT in 7.2
    svm_hdr = lambda view: [f.name for f in view["kvm_svm_nested_state_hdr"].fields]
    assert svm_hdr(by_name_619) == ["vmcb_pa"] and svm_hdr(by_name_new) == ["vmcb_pa", "gpat"]
    # a value spelled through a newer name
    assert by_name_old["KVM_DEV_VFIO_GROUP"].expr == "1"
    assert by_name_new["KVM_DEV_VFIO_GROUP"].expr == "KVM_DEV_VFIO_FILE"
    assert "KVM_DEV_VFIO_FILE" not in by_name_old
    # a padding word that a later field took over
    def hypercall(view):
        run = view["kvm_run"]
        return [p for p, f, _ in run.walk() if p.startswith("hypercall.")]
    assert "hypercall.pad" in hypercall(by_name_old) and "hypercall.flags" not in hypercall(by_name_old)
    assert "hypercall.flags" in hypercall(by_name_new) and "hypercall.pad" not in hypercall(by_name_new)
    # an item removed since then
    assert "KVM_TRC_SHIFT" in by_name_old and "KVM_TRC_SHIFT" not in by_name_new


def test_moved_items_are_in_their_old_header_before_the_move(scratch, capsys):
    # the spec says so itself now (moved: on sev_cmd_id)
    assert "  - enum: sev_cmd_id\n    moved:\n      - {header: linux, until: \"6.9\"}\n" in \
        scratch.read("spec/x86/sev.yaml")
    from kvmspec.build import load_model
    from kvmspec.model import Version
    from kvmspec.view import View
    model = load_model(REPO)   # sev_cmd_id: moved from linux/kvm.h to the x86 asm/kvm.h in 6.9
    old = {i.name: i for i in View(model, Version.parse("6.1"), "arm64").items}
    new = {i.name: i for i in View(model, Version.parse("6.9"), "arm64").items}
    assert old["sev_cmd_id"].header == "linux"      # every architecture saw it in linux/kvm.h
    assert "sev_cmd_id" not in new                  # since 6.9 only x86's asm/kvm.h has it


def test_an_item_several_architecture_headers_defined_alike_before_a_move(scratch, capsys):
    # __KVM_HAVE_GUEST_DEBUG: in the asm/kvm.h of the architectures with guest debugging
    # until 6.9, in linux/kvm.h for everyone since; KVM_CAP_SET_GUEST_DEBUG, in linux/kvm.h
    # under #ifdef __KVM_HAVE_GUEST_DEBUG, reached each architecture with it.
    from kvmspec.build import load_model
    from kvmspec.model import Version
    from kvmspec.view import View

    def seen(model, release, arch):
        return {i.name: i for i in View(model, Version.parse(release), arch).items}

    model = load_model(REPO)
    for name, header in (("__KVM_HAVE_GUEST_DEBUG", "x86"), ("KVM_CAP_SET_GUEST_DEBUG", "linux")):
        assert seen(model, "6.1", "x86")[name].header == header
        assert name not in seen(model, "6.1", "riscv") and name not in seen(model, "6.8", "mips")
        assert seen(model, "6.9", "riscv")[name].header == "linux"
    # a second header with the same `until`: both architectures saw it, each in its own header
    scratch.replace("spec/x86/vm.yaml", "      - header: ppc\n        until: \"6.9\"\n",
                    "      - header: ppc\n        until: \"6.9\"\n"
                    "      - header: riscv\n        until: \"6.9\"\n")
    assert scratch.run("validate", capsys=capsys).status == 0
    model = load_model(scratch.root)
    assert seen(model, "6.1", "riscv")["__KVM_HAVE_GUEST_DEBUG"].header == "riscv"
    assert seen(model, "6.1", "x86")["__KVM_HAVE_GUEST_DEBUG"].header == "x86"
    assert seen(model, "6.1", "riscv")["KVM_CAP_SET_GUEST_DEBUG"].header == "linux"
    assert "__KVM_HAVE_GUEST_DEBUG" not in seen(model, "6.1", "mips")
    assert "KVM_CAP_SET_GUEST_DEBUG" not in seen(model, "6.1", "mips")


def test_a_default_holds_where_the_architecture_has_no_definition_yet():
    # linux/kvm.h defines KVM_DIRTY_LOG_PAGE_OFFSET as 0 unless asm/kvm.h did; RISC-V's
    # asm/kvm.h has had its own (64) since 6.17.
    from kvmspec.build import load_model
    from kvmspec.model import Version
    from kvmspec.view import View
    model = load_model(REPO)

    def offsets(release):
        return [(i.header, i.expr) for i in View(model, Version.parse(release), "riscv").items
                if i.name == "KVM_DIRTY_LOG_PAGE_OFFSET"]

    assert offsets("6.1") == [("linux", "0")]
    assert offsets("6.17") == [("riscv", "64")]


@pytest.mark.slow
def test_headers_of_a_release_are_the_kernels(tmp_path):
    """kvmspec headers --release 6.1 writes what Debian's 6.1 headers say, fact for fact."""
    need_clang()
    if not SYSTEM_KVM_H.is_file():
        pytest.skip("the kernel's uapi headers are not installed (Debian: linux-libc-dev)")
    out = tmp_path / "h"
    result = run_kvmspec("headers", "--release", "6.1", "--out", str(out), cwd=REPO)
    assert result.status == 0, result.err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.h")) == ["asm/kvm.h", "linux/kvm.h"]
    text = (out / "linux/kvm.h").read_text()
    assert "#define KVM_TRC_SHIFT" in text            # removed in 6.8, still there in 6.1
    assert "KVM_CAP_USER_MEMORY2" not in text          # added in 6.8
    # the written tree, read back as a kernel tree of 6.1 (no version.h: --release is needed)
    missing = run_kvmspec("diff-header", str(out), cwd=REPO)
    assert missing.status == 2 and "give --release R" in missing.err
    same = run_kvmspec("diff-header", str(out), "--release", "6.1", cwd=REPO)
    assert same.status == 0, same.out
    # and the kernel's own 6.1 headers agree with it
    theirs = run_kvmspec("diff-header", "/usr/include", cwd=REPO)
    assert theirs.status == 0, theirs.out


def test_headers_refuses_releases_outside_the_spec(tmp_path):
    result = run_kvmspec("headers", "--release", "2.6.10", "--out", str(tmp_path / "h"), cwd=REPO)
    assert result.status == 2 and "the spec covers 2.6.20 to" in result.err
    result = run_kvmspec("headers", "--release", "six", "--out", str(tmp_path / "h"), cwd=REPO)
    assert result.status == 2 and "give a kernel release such as 6.1" in result.err
    assert not (tmp_path / "h").exists()


# ------------------------------------------------------------------ trees as they come

def copy_of_system_headers(tmp_path):
    tree = tmp_path / "include"
    shutil.copytree("/usr/include/linux", tree / "linux")
    shutil.copytree("/usr/include/x86_64-linux-gnu/asm", tree / "asm")
    shutil.copytree("/usr/include/asm-generic", tree / "asm-generic")
    return tree


@pytest.mark.slow
def test_a_line_that_does_not_compile_voids_only_itself(tmp_path):
    need_clang()
    if not SYSTEM_KVM_H.is_file():
        pytest.skip("the kernel's uapi headers are not installed (Debian: linux-libc-dev)")
    tree = copy_of_system_headers(tmp_path)
    asm = tree / "asm/kvm.h"
    # an older shape of one struct: a field the spec knows is missing from the tree
    asm.write_text(asm.read_text().replace("\t__u64 preemption_timer_deadline;\n", "\t__u64 other;\n", 1))
    result = run_kvmspec("diff-header", str(tree), "--abi", "x86_64", cwd=REPO)
    assert result.status == 1
    assert ("does not compile with the tree: offset struct kvm_vmx_nested_state_hdr.preemption_timer_deadline"
            in result.out)
    # every other fact was still compared
    facts = int(re.search(r"agree on (\d+) facts", result.out).group(1))
    assert facts > 2000
    assert result.out.count("differs: ") == 2   # the offset and the member size of that one field


@pytest.mark.slow
def test_a_kernel_source_tree_as_it_is(tmp_path):
    """Raw uapi files (with __user, a Makefile instead of version.h, no generated asm/ headers)."""
    need_clang()
    if not SYSTEM_KVM_H.is_file():
        pytest.skip("the kernel's uapi headers are not installed (Debian: linux-libc-dev)")
    src = tmp_path / "linux"
    (src / "include/uapi").mkdir(parents=True)
    shutil.copytree("/usr/include/linux", src / "include/uapi/linux")
    shutil.copytree("/usr/include/asm-generic", src / "include/uapi/asm-generic")
    (src / "arch/x86/include/uapi/asm").mkdir(parents=True)
    shutil.copy("/usr/include/x86_64-linux-gnu/asm/kvm.h", src / "arch/x86/include/uapi/asm/kvm.h")
    kvm_h = src / "include/uapi/linux/kvm.h"
    kvm_h.write_text(kvm_h.read_text().replace("#include <linux/types.h>",
                                               "#include <linux/compiler.h>\n#include <linux/types.h>", 1)
                     .replace("__u64 padding[5];", "__u64 __user padding[5];", 1))
    # The raw stddef.h of 4.16 to 5.x includes a header that headers_install strips.
    stddef = src / "include/uapi/linux/stddef.h"
    stddef.write_text("#include <linux/compiler_types.h>\n" + stddef.read_text())
    (src / "include/uapi/linux/version.h").unlink()
    (src / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    result = run_kvmspec("diff-header", str(src), cwd=REPO)
    assert "kernel source tree" in result.out and "(Linux 6.1)" in result.out
    assert result.status == 0, result.out + result.err


# ------------------------------------------------------------------ other architectures' trees

@pytest.mark.slow
@pytest.mark.parametrize("arch", ["arm64", "riscv", "s390", "ppc", "mips"])   # Debian has no loongarch tree
def test_diff_header_reads_other_architectures_trees(arch):
    """Each architecture's Debian cross tree is read with clang --target; until the spec
    describes that architecture's asm/kvm.h, diff-header says so instead of comparing."""
    abi = abis_of(arch)[0]
    from kvmspec.build import load_model
    described = any(h.arch == arch and h.emit for h in load_model(REPO).headers)
    need_clang(abi)
    result = run_kvmspec("diff-header", f"/usr/{abi.debian}/include", "--arch", arch, cwd=REPO)
    if not described:
        assert result.status == 2 and f"the spec has no asm/kvm.h for {arch} yet" in result.err
        return
    assert result.status == 0, result.out
    assert result.out.rstrip().endswith("no differences")


@pytest.mark.slow
@pytest.mark.parametrize("abi", [X86_64, I386], ids=lambda a: a.name)
def test_layouts_of_a_release_are_the_kernels(abi, tmp_path):
    """The model's layout of every record as it was in 6.1 (View.layout: the fields it had
    then) equals what clang makes of Debian's 6.1 headers."""
    need_clang(abi)
    if not SYSTEM_KVM_H.is_file():
        pytest.skip("the kernel's uapi headers are not installed (Debian: linux-libc-dev)")
    from kvmspec.build import load_model
    from kvmspec.conformance import ir_facts
    from kvmspec.emit.tests import dump_source
    from kvmspec.emit.text import environment
    from kvmspec.model import Record, Version
    from kvmspec.view import View
    view = View(load_model(REPO), Version.parse("6.1"), "x86")
    dump = tmp_path / "dump.c"
    dump.write_text(dump_source(view, environment()))
    facts, problem = ir_facts(abi, [], [], dump)
    assert facts is not None, problem
    compared = 0
    for record in view.items:
        if not isinstance(record, Record) or not record.name:
            continue
        expected = facts.get(f"size {record.c_type}")
        if expected is None:
            continue
        layout = view.layout(record, abi)
        assert layout is not None and layout.size == int(expected), record.c_type
        assert layout.align == int(facts[f"align {record.c_type}"]), record.c_type
        compared += 1
    assert compared > 100


# ------------------------------------------------------------------ releases not out yet

def test_items_after_the_newest_released_release_are_marked_not_yet_released(scratch, capsys):
    # Pretend 7.2 is still in its merge window: its items are merged but not released.
    scratch.replace("spec/kvmspec.yaml", 'released: "7.3"', 'released: "7.1"')
    scratch.run("generate", capsys=capsys)
    versions = "".join(p.read_text() for p in sorted(scratch.path("generated/docs").glob("versions*/**/*.rst")))
    versions += scratch.read("generated/docs/versions.rst")
    assert "Linux 7.2 (not yet released)\n" in versions
    assert "Linux 7.1\n---------\n" in versions          # a released release keeps its plain heading
    api = scratch.read("generated/Documentation/virt/kvm/api.rst")
    hpage_2g = api[api.index("KVM_CAP_S390_HPAGE_2G\n"):]
    assert hpage_2g.split(":Since:", 1)[1].split("\n", 1)[0].strip() == "7.2 (not yet released)"
    assert "Linux 7.1 is the newest release that is out" in api
    # with the real manifest (7.3 released) nothing is marked
    real = "".join(p.read_text() for p in sorted((REPO / "generated/docs").glob("versions*/**/*.rst")))
    real += (REPO / "generated/docs/versions.rst").read_text()
    assert "(not yet released)" not in real and "The newest release that is out is Linux 7.3." in real


def test_released_may_not_be_later_than_every_release_the_spec_names(scratch, capsys):
    scratch.replace("spec/kvmspec.yaml", 'released: "7.3"', 'released: "7.4"')
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1
    line = scratch.line_of("spec/kvmspec.yaml", 'released: "7.4"')
    assert f"spec/kvmspec.yaml:{line}:11: error: released: 7.4 is later than the newest release" in result.err


def test_items_that_moved_into_the_x86_header_are_in_every_architectures_older_linux_kvm_h():
    """The SEV, Xen and Hyper-V definitions sat in linux/kvm.h, seen by every architecture,
    until 6.9 moved them into x86's asm/kvm.h."""
    from kvmspec.build import load_model
    from kvmspec.model import Version
    from kvmspec.view import View
    model = load_model(REPO)
    for name in ("kvm_sev_cmd", "sev_cmd_id", "kvm_xen_hvm_attr", "kvm_hyperv_eventfd"):
        item = model.by_name[name]
        assert item.header_at(Version.parse("6.8")) == "linux" and item.header_at(Version.parse("6.9")) == "x86"
        for arch in ("arm64", "s390", "riscv"):
            assert name in {i.name for i in View(model, Version.parse("6.1"), arch).items}, (name, arch)
            assert name not in {i.name for i in View(model, Version.parse("6.9"), arch).items}, (name, arch)
        assert name in {i.name for i in View(model, Version.parse("6.9"), "x86").items}


def test_an_enum_that_was_plain_defines_before_a_release_is_written_as_defines_then(tmp_path):
    """kvm_device_type became a C enum in 3.18; the headers of 3.12 define its values
    with plain #defines, as the kernel's did, and those of 3.18 with the enum."""
    from kvmspec.build import load_model
    from kvmspec.emit.text import environment
    from kvmspec.model import Version
    from kvmspec.view import View, header_files
    model = load_model(REPO)
    old = header_files(model, Version.parse("3.12"), "x86", environment())["linux/kvm.h"]
    new = header_files(model, Version.parse("3.18"), "x86", environment())["linux/kvm.h"]
    assert "enum kvm_device_type" not in old and "#define KVM_DEV_TYPE_XICS\t\t3" in old
    assert "enum kvm_device_type {" in new and "#define KVM_DEV_TYPE_XICS KVM_DEV_TYPE_XICS" in new
    by_name = {i.name: i for i in View(model, Version.parse("3.12"), "x86").items}
    assert by_name["kvm_device_type"].c_style == "define"


# ------------------------------------------------------------------ architectures that gained an item later

def test_the_view_says_whether_an_architecture_has_an_item_at_a_release():
    """KVM_SET_GUEST_DEBUG is 2.6.30 on x86, but reached s390 in 3.16 and riscv in 6.10;
    KVM_MP_STATE_STOPPED (3.17) is riscv's from its first KVM release, 5.16."""
    from kvmspec.build import load_model
    from kvmspec.model import Version
    from kvmspec.view import View
    model = load_model(REPO)
    debug = model.by_name["KVM_SET_GUEST_DEBUG"]

    def has(arch, release, item=debug, owner=None):
        return View(model, Version.parse(release), arch).has(item, owner=owner)

    assert has("x86", "2.6.30") and not has("x86", "2.6.29")
    assert not has("riscv", "6.9") and has("riscv", "6.10") and has("riscv", "7.3")
    assert not has("s390", "3.15") and has("s390", "3.16")
    assert not has("mips", "7.3")                       # not on its arch: list at all
    assert View(model, Version.parse("6.9")).arches_of(debug) == ("x86", "arm64", "s390", "ppc")
    assert View(model, Version.parse("4.2")).arches_of(debug) == ("x86", "s390", "ppc")   # arm64 from 4.3
    assert debug.since_on("riscv") == Version.parse("6.10") and debug.since_on("x86") == debug.since
    mp_states = model.by_name["kvm_mp_states"]
    stopped = mp_states.value_named("KVM_MP_STATE_STOPPED")
    assert not has("riscv", "5.15", stopped, mp_states) and has("riscv", "5.16", stopped, mp_states)
    assert has("s390", "3.17", stopped, mp_states) and not has("s390", "3.16", stopped, mp_states)
    assert not has("x86", "7.3", stopped, mp_states)
    # a value without an arch: list of its own is on its set's architectures
    pause = model.by_name["kvm_guest_debug_flags"].values[0]
    assert has("riscv", "6.10", pause, model.by_name["kvm_guest_debug_flags"])


def test_api_rst_and_the_site_give_each_later_architecture_its_release(scratch, capsys):
    scratch.replace("spec/common/vcpu.yaml", "    arch: [{arm64: \"3.11\"}, mips, riscv]\n",
                    "    arch: [{arm64: \"3.11\"}, mips, {riscv: \"6.6\"}]\n")
    assert scratch.run("generate", capsys=capsys).status == 0
    api = scratch.read("generated/Documentation/virt/kvm/api.rst")
    section = api[api.index("KVM_GET_REG_LIST\n---"):]
    assert section.split("\n\n", 2)[1].splitlines()[1] == ":Architectures: arm64 (since 3.11), mips, riscv (since 6.6)"
    site = "\n".join(p.read_text() for p in (scratch.root / "generated/docs").rglob("*.rst"))
    assert ":Architectures: arm64 (since 3.11), mips, riscv (since 6.6)" in site
    # a value's later architectures are in the Since column of its set's table
    assert re.search(r"KVM_MP_STATE_STOPPED +5 +3\.17 \(riscv 5\.16\) ", api)
