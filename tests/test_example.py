"""The examples run as a user would run them."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, needs_kvm


@needs_kvm
def test_hello_guest_prints_what_the_guest_wrote():
    proc = subprocess.run([sys.executable, str(REPO / "examples/hello_guest.py")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello from a KVM guest, written in Python with kvm_uapi!\n"
    assert proc.stderr == ""


def test_hello_guest_without_kvm_fails_cleanly(tmp_path):
    missing = tmp_path / "missing"
    proc = subprocess.run([sys.executable, str(REPO / "examples/hello_guest.py"), "--device", str(missing)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"hello_guest: [Errno 2] No such file or directory: '{missing}'\n"


@needs_kvm
def test_hello_guest_carries_any_message():
    proc = subprocess.run([sys.executable, str(REPO / "examples/hello_guest.py"), "two", "words"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "two words\n"
