"""`mypy --strict` accepts the bindings, the examples and a VMM author's script, with concrete
types inferred (tests/data/typing/vmm_idioms.py states them with typing.assert_type)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, needs_kvm

SCRIPT = REPO / "tests/data/typing/vmm_idioms.py"


def mypy(tmp_path, *paths: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]' installs it)")
    env = dict(os.environ, MYPYPATH=str(REPO / "generated/python"))
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir",
                           str(tmp_path / "cache"), *paths], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_mypy_strict_passes_on_the_bindings_examples_and_a_user_script(tmp_path):
    package = mypy(tmp_path, "-p", "kvm_uapi")
    assert package.returncode == 0 and package.stdout == "", package.stdout + package.stderr
    users = mypy(tmp_path, str(REPO / "examples"), str(SCRIPT))
    assert users.returncode == 0 and users.stdout == "", users.stdout + users.stderr


@pytest.mark.slow
def test_mypy_sees_a_wrong_type_in_a_user_script(tmp_path):
    """The check has teeth: a field read as the wrong type, a constant that is not exported."""
    wrong = tmp_path / "wrong.py"
    wrong.write_text(SCRIPT.read_text().replace("assert_type(regs.rip, int)", "assert_type(regs.rip, str)")
                     + "from kvm_uapi.api import KVM_RUN\n")
    proc = mypy(tmp_path, str(wrong))
    assert proc.returncode == 1
    assert 'Expression is of type "int", not "str"' in proc.stdout
    assert 'Module "kvm_uapi.api" does not explicitly export attribute "KVM_RUN"' in proc.stdout


@needs_kvm
def test_the_user_script_runs():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hi@i\n"
