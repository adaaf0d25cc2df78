"""The generated api.rst builds where it will live: in the kernel's own
Documentation tree, with the kernel's conf.py, its Sphinx extensions and the
Sphinx its Documentation/sphinx/requirements.txt names, without a warning that
the kernel's own api.rst does not also produce.

The kernel tree is Debian's linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz,
or $KVMSPEC_KERNEL_SOURCE); only Documentation/ and scripts/kernel-doc are
unpacked. Each Sphinx the build is tried with lives in its own virtual
environment under $KVMSPEC_CACHE (default ~/.cache/kvmspec), made with pip from
PyPI the first time and reused afterwards; .ci/run installs what this needs
(linux-source-6.1, python3-venv)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

SOURCE = Path(os.environ.get("KVMSPEC_KERNEL_SOURCE", "/usr/src/linux-source-6.1.tar.xz"))
CACHE = Path(os.environ.get("KVMSPEC_CACHE", Path.home() / ".cache" / "kvmspec"))
API = "Documentation/virt/kvm/api.rst"

# Packages released after the kernel's pinned Sphinx 2.4.4 that no longer work
# with it; pip would otherwise pick their newest versions.
SPHINX2_COMPANIONS = ["docutils<0.18", "sphinx_rtd_theme<1.0", "alabaster<0.7.14",
                      "sphinxcontrib-applehelp<1.0.5", "sphinxcontrib-devhelp<1.0.3",
                      "sphinxcontrib-htmlhelp<2.0.2", "sphinxcontrib-qthelp<1.0.4",
                      "sphinxcontrib-serializinghtml<1.1.6"]
# The toolchains the build is tried with: the kernel's own requirements (read
# from its tree), and Debian 12's Sphinx, which a maintainer on Debian runs.
TOOLCHAINS = {
    "kernel-requirements": None,
    "sphinx-5.3": ["Sphinx==5.3.0", "docutils<0.20", "sphinx_rtd_theme<2"],
}


@pytest.fixture(scope="module")
def kernel_tree(tmp_path_factory) -> Path:
    """Documentation/ and scripts/kernel-doc of the kernel source, unpacked."""
    if not SOURCE.is_file():
        pytest.skip(f"{SOURCE} is absent (Debian: apt-get install linux-source-6.1)")
    root = tmp_path_factory.mktemp("linux")
    with tarfile.open(SOURCE) as tar:
        top = tar.next().name.split("/")[0]
    wanted = [f"{top}/Documentation", f"{top}/scripts/kernel-doc"]
    if shutil.which("tar"):
        # GNU tar reads the archive once; tarfile would decompress it twice
        subprocess.run(["tar", "-xf", str(SOURCE), "-C", str(root), *wanted], check=True, timeout=600)
    else:
        with tarfile.open(SOURCE) as tar:
            members = [m for m in tar if m.name.startswith(tuple(wanted)) and (m.isfile() or m.isdir())]
            tar.extractall(root, members=members, filter="data")
    tree = root / top
    assert (tree / API).is_file() and (tree / "Documentation/conf.py").is_file()
    return tree


def requirements(tree: Path, toolchain: str) -> list[str]:
    pinned = TOOLCHAINS[toolchain]
    if pinned is not None:
        return pinned
    lines = (tree / "Documentation/sphinx/requirements.txt").read_text().splitlines()
    kernel = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert any(r.lower().startswith("sphinx==") for r in kernel), kernel
    return kernel + SPHINX2_COMPANIONS


def sphinx_python(tree: Path, toolchain: str) -> Path:
    """The Python of a virtual environment holding the toolchain, made once
    (made under another name and renamed, so a half-made one is never used)."""
    wanted = requirements(tree, toolchain)
    key = hashlib.sha256("\n".join([sys.version, *wanted]).encode()).hexdigest()[:12]
    venv = CACHE / f"kernel-docs-{toolchain}-{key}"
    if not (venv / "bin/python").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = CACHE / f".{venv.name}.{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(partial)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot make a virtual environment (Debian: apt-get install python3-venv): "
                        f"{made.stderr.strip()[-300:]}")
        pip = subprocess.run([str(partial / "bin/python"), "-m", "pip", "install", "-q", *wanted],
                             capture_output=True, text=True, timeout=600)
        if pip.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            pytest.skip(f"pip could not install {' '.join(wanted)}: {pip.stderr.strip()[-300:]}")
        shutil.rmtree(venv, ignore_errors=True)
        partial.rename(venv)
    return venv / "bin/python"


WARNING = re.compile(r"^(?P<where>.*?)(?::(?P<line>\d+))?: (?P<level>WARNING|ERROR|SEVERE|CRITICAL): (?P<what>.*)$")


def warnings_of(stderr: str, tree: Path) -> list[str]:
    """The build's warnings and errors, with paths relative to the tree and
    without line numbers (ours and the kernel's api.rst differ in length)."""
    found = []
    for line in stderr.splitlines():
        m = WARNING.match(line)
        if m is None:
            if "WARNING" in line or "ERROR" in line:
                found.append(line.replace(str(tree) + "/", ""))
            continue
        where = m["where"].replace(str(tree) + "/", "")
        what = re.sub(r"line \d+", "line N", m["what"]).replace(str(tree) + "/", "")
        found.append(f"{where}: {m['level']}: {what}")
    return found


def build(tree: Path, python: Path, out: Path) -> tuple[list[str], str]:
    """`make SPHINXDIRS=virt htmldocs`, as its Makefile calls Sphinx: the
    warnings, and the HTML of api.rst."""
    proc = subprocess.run(
        [str(python), "-m", "sphinx", "-b", "html", "-c", "Documentation", "-d", str(out / ".doctrees"),
         "-D", "kerneldoc_srctree=.", "-D", "kerneldoc_bin=scripts/kernel-doc",
         "Documentation/virt", str(out)],
        cwd=tree, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SPHINX_CONF": str(tree / "Documentation/virt/conf.py")})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return warnings_of(proc.stderr, tree), (out / "kvm/api.html").read_text()


@pytest.mark.parametrize("toolchain", list(TOOLCHAINS))
def test_generated_api_rst_adds_no_warning_to_the_kernels_docs_build(kernel_tree, toolchain, tmp_path):
    python = sphinx_python(kernel_tree, toolchain)
    theirs, their_html = build(kernel_tree, python, tmp_path / "kernel")
    kernel_api = (kernel_tree / API).read_bytes()
    try:
        shutil.copyfile(REPO / "generated" / API, kernel_tree / API)
        ours, our_html = build(kernel_tree, python, tmp_path / "ours")
    finally:
        (kernel_tree / API).write_bytes(kernel_api)

    # Both builds really rendered their api.rst.
    title = re.search(r"^=+\n(.+)\n=+$", (REPO / "generated" / API).read_text(), re.M)[1].strip()
    assert f"{title}<a" in our_html
    assert "KVM_GET_NESTED_STATE" in our_html and "KVM_GET_NESTED_STATE" in their_html
    assert our_html != their_html

    extra = sorted(set(ours) - set(theirs))
    assert extra == [], "warnings the kernel's own api.rst does not produce:\n" + "\n".join(extra)
