"""`kvmspec review PATCH`: real uapi patches from the list, applied to the generated headers and judged.

The fixtures under tests/data/review/ make the header changes of three
postings on kvm@vger.kernel.org against kvmspec's generated headers of the
newest release (the posted context lines are the kernel's, so the hunks are
rewritten to apply here; each fixture says which posting it follows).
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO, run_kvmspec

DATA = REPO / "tests" / "data" / "review"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                reason="kvmspec review reads headers through a C compiler")


def review(path, *extra):
    result = run_kvmspec("review", str(path), *extra, cwd=REPO)
    assert "Traceback" not in result.err
    return result


def remarks(out: str, prefix: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(prefix + ":")]


def test_gpat_series_header_hunk_asks_for_an_opt_in():
    """March 2026, nested SVM gPAT: the new bit in kvm_nested_state.flags and the gPAT in the SVM header."""
    patch = DATA / "gpat-nested-state.mbox"
    result = review(patch, "--release", "7.0")   # posted for 7.1, before the gPAT work was merged
    assert result.status == 0, result.out + result.err
    lines = remarks(result.out, str(patch))
    text = patch.read_text().splitlines()
    flag_line = next(n for n, l in enumerate(text, 1) if l.startswith("+#define KVM_STATE_NESTED_GPAT_VALID"))
    gpat_line = next(n for n, l in enumerate(text, 1) if l == "+\t__u64 gpat;")
    assert f"{patch}:{flag_line}: question: [unrestorable-state] KVM_SET_NESTED_STATE rejects unknown bits in " \
           f"flags on vmx, svm: if KVM_GET_NESTED_STATE emits KVM_STATE_NESTED_GPAT_VALID, it must be opt-in" \
           in "\n".join(lines)
    assert any(f"{patch}:{flag_line}: note: [new-value] new bit KVM_STATE_NESTED_GPAT_VALID = 0x200 of flags "
               "kvm_nested_state_flags" in l for l in lines)
    reserved = next(l for l in lines if "[reserved-field-reused]" in l)
    assert reserved.startswith(f"{patch}:{gpat_line}: warning:")
    assert "new struct kvm_svm_nested_state_hdr.gpat takes 8 bytes of reserved space (struct kvm_nested_state." \
           "hdr.pad) that KVM_SET_NESTED_STATE never checked for zero" in reserved
    assert "is it read only when KVM_STATE_NESTED_GPAT_VALID" in reserved
    assert any("grows from 8 to 16 bytes on x86_64 inside struct kvm_nested_state.hdr.svm, whose size does not "
               "change: no ioctl number changes" in l for l in lines)
    assert result.out.rstrip().endswith("0 error(s), 1 warning(s), 2 question(s), 2 note(s)")


def test_arm_sea_exit_and_capability():
    """October 2025, arm64 synchronous external aborts to userspace: exit 41, kvm_run.arm_sea, capability 245."""
    patch = DATA / "arm-sea-to-user.patch"
    result = review(patch, "--format", "json", "--release", "6.18")   # merged for 6.19
    assert result.status == 0, result.out + result.err
    data = json.loads(result.out)
    assert data["errors"] == 0 and data["headers"] == ["include/uapi/linux/kvm.h"]
    assert set(data["abis"]) <= {"x86_64", "i386"} and "x86_64" in data["abis"]
    messages = [r["message"] for r in data["remarks"]]
    assert "new exit reason KVM_EXIT_ARM_SEA = 41" in messages
    assert "new capability KVM_CAP_ARM_SEA_TO_USER = 245" in messages
    assert any("KVM_RUN reports KVM_EXIT_ARM_SEA to userspace that may not know it: which capability must "
               "userspace enable first (KVM_CAP_ARM_SEA_TO_USER in this patch?)" in m for m in messages)
    assert any("new struct kvm_run.arm_sea (32 bytes) is a new member of the union at offset 32" in m
               and "fits in its 256 bytes; struct kvm_run keeps its size" in m for m in messages)
    # the flag defined inside the new member is not taken for an exit reason
    assert not any("KVM_EXIT_ARM_SEA_FLAG_GPA_VALID" in m and "exit reason" in m for m in messages)


def test_nested_svm_shared_pat_quirk():
    """2026, gPAT series: quirk bit 11; the spec knows who answers with and who takes quirk bits."""
    patch = DATA / "nested-svm-shared-pat-quirk.patch"
    result = review(patch, "--release", "6.18")   # written against 6.18's headers
    assert result.status == 0, result.out + result.err
    out = result.out
    assert "new bit KVM_X86_QUIRK_NESTED_SVM_SHARED_PAT = 0x800 of flags kvm_x86_quirk_flags" in out
    assert "KVM_CHECK_EXTENSION(KVM_CAP_DISABLE_QUIRKS2) answers with kvm_x86_quirk_flags bits: does this kernel " \
           "report KVM_X86_QUIRK_NESTED_SVM_SHARED_PAT there" in out
    assert "KVM_ENABLE_CAP(KVM_CAP_DISABLE_QUIRKS) takes kvm_x86_quirk_flags in args[0]" in out


def test_a_grown_struct_renumbers_its_ioctls(tmp_path):
    """Sizing kvm_nested_state's data area (declared with zero length in 5.2 for this reason)."""
    header = (REPO / "generated/arch/x86/include/uapi/asm/kvm.h").read_text().splitlines()
    at = next(n for n, l in enumerate(header) if "struct kvm_vmx_nested_state_data vmx[0];" in l)
    patch = tmp_path / "grow.patch"
    patch.write_text("--- a/arch/x86/include/uapi/asm/kvm.h\n+++ b/arch/x86/include/uapi/asm/kvm.h\n"
                     f"@@ -{at + 1},1 +{at + 1},1 @@\n-{header[at]}\n+{header[at].replace('[0]', '[1]')}\n")
    result = review(patch)
    assert result.status == 1, result.out + result.err
    assert "struct kvm_nested_state grows from 128 to 8320 bytes on x86_64, which renumbers the ioctls that " \
           "encode it: KVM_GET_NESTED_STATE 0xc080aebe -> 0xe080aebe; KVM_SET_NESTED_STATE 0x4080aebf -> " \
           "0x6080aebf" in result.out


def test_patches_that_cannot_be_reviewed(tmp_path):
    stale = tmp_path / "stale.patch"
    stale.write_text("--- a/include/uapi/linux/kvm.h\n+++ b/include/uapi/linux/kvm.h\n@@ -1,2 +1,2 @@\n"
                     "-#define NOT_IN_THE_HEADER 1\n-#define NOR_THIS 2\n+#define NOT_IN_THE_HEADER 3\n"
                     "+#define NOR_THIS 4\n")
    other = tmp_path / "other.patch"
    other.write_text("--- a/arch/x86/kvm/x86.c\n+++ b/arch/x86/kvm/x86.c\n@@ -1 +1 @@\n-a\n+b\n")
    arm = tmp_path / "arm.patch"
    arm.write_text("--- a/arch/arm64/include/uapi/asm/kvm.h\n+++ b/arch/arm64/include/uapi/asm/kvm.h\n"
                   "@@ -1 +1 @@\n-a\n+b\n")
    for path, words in ((stale, "does not apply to the generated headers"),
                        (other, "touches no KVM uapi header"),
                        (arm, "which the spec does not generate"),
                        (tmp_path / "missing.patch", "no such file")):
        result = review(path)
        assert result.status == 2, (path, result.out, result.err)
        assert len(result.err.strip().splitlines()) == 1 and words in result.err, result.err


def test_quoted_printable_mail_reads_like_the_plain_one(tmp_path):
    """Mails from the list often come quoted-printable (=3D for =, soft line breaks)."""
    import quopri
    plain = (DATA / "gpat-nested-state.mbox").read_text()
    head, body = plain.split("\n\n", 1)
    encoded = quopri.encodestring(body.encode(), quotetabs=True).decode()
    assert "=09" in encoded                       # the tabs of the header are encoded
    mail = tmp_path / "gpat-qp.mbox"
    mail.write_text(head + "\nContent-Transfer-Encoding: quoted-printable\n\n" + encoded)
    result = review(mail, "--release", "7.0")
    assert result.status == 0, result.out + result.err
    assert "KVM_SET_NESTED_STATE rejects unknown bits in flags on vmx, svm: if KVM_GET_NESTED_STATE emits " \
           "KVM_STATE_NESTED_GPAT_VALID, it must be opt-in" in result.out
    assert result.out.rstrip().endswith("0 error(s), 1 warning(s), 2 question(s), 2 note(s)")


def carve(tmp_path, extra_flag: bool):
    """4.20 took exception_has_payload out of kvm_vcpu_events.reserved, valid only with a new flag."""
    header = (REPO / "generated/arch/x86/include/uapi/asm/kvm.h").read_text().splitlines()
    at = next(n for n, l in enumerate(header) if l == "\t__u8 reserved[26];")
    hunks = ["--- a/arch/x86/include/uapi/asm/kvm.h", "+++ b/arch/x86/include/uapi/asm/kvm.h",
             f"@@ -{at + 1},1 +{at + 1},2 @@", f"-{header[at]}", "+\t__u8 reserved[25];", "+\t__u8 payload_kind;"]
    if extra_flag:
        flag = next(n for n, l in enumerate(header) if l.startswith("#define KVM_VCPUEVENT_VALID_TRIPLE_FAULT"))
        hunks = hunks[:2] + [f"@@ -{flag + 1},0 +{flag + 2},1 @@", "+#define KVM_VCPUEVENT_VALID_PAYLOAD_KIND\t0x00000040"] \
            + hunks[2:]
    patch = tmp_path / "carve.patch"
    patch.write_text("\n".join(hunks) + "\n")
    return review(patch)


def test_a_field_carved_out_of_unchecked_reserved_bytes(tmp_path):
    result = carve(tmp_path, extra_flag=False)
    assert result.status == 1, result.out + result.err
    line = next(l for l in result.out.splitlines() if "[reserved-field-reused]" in l)
    assert ": error: [reserved-field-reused] new struct kvm_vcpu_events.payload_kind takes 1 byte of reserved " \
           "space (struct kvm_vcpu_events.reserved) that KVM_SET_VCPU_EVENTS never checked for zero" in line
    assert "gate it with a new flag that older kernels reject" in line
    assert "moves from offset" not in result.out      # the reserved array shrinks, nothing else moves


def test_the_same_field_with_a_new_validity_flag_is_a_question(tmp_path):
    result = carve(tmp_path, extra_flag=True)
    assert result.status == 0, result.out + result.err
    assert "is it read only when KVM_VCPUEVENT_VALID_PAYLOAD_KIND (new in this patch, rejected as unknown by " \
           "older kernels) is set?" in result.out
    assert "KVM_SET_VCPU_EVENTS rejects unknown bits in flags on vmx, svm: if KVM_GET_VCPU_EVENTS emits " \
           "KVM_VCPUEVENT_VALID_PAYLOAD_KIND, it must be opt-in" in result.out
