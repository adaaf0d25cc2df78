"""`kvmspec generate`: determinism, --check, and all-or-nothing writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, assert_two_processes_report_as_one, run_kvmspec

NESTED = "spec/x86/nested-state.yaml"


def test_committed_generated_tree_is_up_to_date():
    result = run_kvmspec("generate", "--check", cwd=REPO)
    assert result.status == 0, result.err
    assert "up to date" in result.out


def test_output_is_identical_across_runs_and_hash_seeds(scratch, tmp_path):
    first = run_kvmspec("--root", str(scratch.root), "generate", env={"PYTHONHASHSEED": "1"})
    assert first.status == 0, first.err
    tree1 = scratch.tree()
    second_root = tmp_path / "again"
    second_root.mkdir()
    (second_root / "spec").symlink_to(scratch.root / "spec")
    second = run_kvmspec("--root", str(second_root), "generate", env={"PYTHONHASHSEED": "4242"})
    assert second.status == 0, second.err
    tree2 = {p.relative_to(second_root / "generated").as_posix(): p.read_bytes()
             for p in sorted((second_root / "generated").rglob("*")) if p.is_file()}
    assert tree1 == tree2
    assert set(tree1) >= {"include/uapi/linux/kvm.h", "arch/x86/include/uapi/asm/kvm.h",
                          "python/kvm_uapi/__init__.py", "Documentation/virt/kvm/api.rst",
                          "tests/kvm_conformance.c", "tests/test_kvm_uapi.py"}


def test_generated_tree_matches_the_committed_one(scratch, capsys):
    assert scratch.run("generate", capsys=capsys).status == 0
    committed = {p.relative_to(REPO / "generated").as_posix(): p.read_bytes()
                 for p in sorted((REPO / "generated").rglob("*"))
                 if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts}
    assert scratch.tree() == committed


def test_second_run_changes_nothing(scratch, capsys):
    assert scratch.run("generate", capsys=capsys).status == 0
    before = {p: p.stat().st_mtime_ns for p in (scratch.root / "generated").rglob("*") if p.is_file()}
    result = scratch.run("generate", capsys=capsys)
    assert result.status == 0 and "up to date" in result.out
    after = {p: p.stat().st_mtime_ns for p in (scratch.root / "generated").rglob("*") if p.is_file()}
    assert before == after


def test_check_lists_stale_files(scratch, capsys):
    assert scratch.run("generate", capsys=capsys).status == 0
    assert scratch.run("generate", "--check", capsys=capsys).status == 0
    header = scratch.root / "generated/include/uapi/linux/kvm.h"
    header.write_text(header.read_text().replace("0xbf", "0xbd"))
    (scratch.root / "generated/extra.txt").write_text("not generated\n")
    (scratch.root / "generated/tests/kvm_abi_dump.c").unlink()
    result = scratch.run("generate", "--check", capsys=capsys)
    assert result.status == 1
    assert "generated/include/uapi/linux/kvm.h: differs" in result.err
    assert "generated/extra.txt: extra" in result.err
    assert "generated/tests/kvm_abi_dump.c: missing" in result.err
    assert "3 generated file(s) are stale" in result.err
    # --check wrote nothing
    assert "0xbd" in header.read_text()


def test_check_after_a_spec_change(scratch, capsys):
    assert scratch.run("generate", capsys=capsys).status == 0
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00000200")
    result = scratch.run("generate", "--check", capsys=capsys)
    assert result.status == 1
    stale = sorted(line.split(":")[0] for line in result.err.splitlines() if line.endswith(": differs"))
    # The value appears in the header, the bindings (and the API's known-bits
    # checks), the docs and the two tests that hold expected values; the ABI
    # dump program only names it. On the site it shows in the x86 ioctls that
    # use the flag set (the nested-state page of the x86 area), on the x86
    # page of the value sets and on the x86 architecture's header page.
    # kvm_uapi.abis has every ABI's constants.
    site = [path for path in stale if path.startswith("generated/docs/")]
    assert [path for path in stale if path not in site] == [
                     "generated/Documentation/virt/kvm/api.rst",
                     "generated/arch/x86/include/uapi/asm/kvm.h",
                     "generated/python/kvm_uapi/__init__.py",
                     "generated/python/kvm_uapi/abis.py",
                     "generated/python/kvm_uapi/api.py",
                     "generated/tests/kvm_conformance.c",
                     "generated/tests/test_kvm_uapi.py"]
    assert len(site) == 3
    assert site[0].startswith("generated/docs/arch/x86/header") and \
        site[1].startswith("generated/docs/values/x86") and site[2].startswith("generated/docs/x86/nested-state")


def test_invalid_spec_leaves_generated_untouched(scratch, capsys):
    assert scratch.run("generate", capsys=capsys).status == 0
    before = scratch.tree()
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00000101")
    result = scratch.run("generate", capsys=capsys)
    assert result.status == 1
    assert scratch.tree() == before


def test_failing_generator_leaves_generated_untouched(scratch, capsys, monkeypatch):
    assert scratch.run("generate", capsys=capsys).status == 0
    before = scratch.tree()
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00000200")
    from kvmspec.emit import rst

    def broken(self, model, env):
        raise RuntimeError("simulated generator failure")

    monkeypatch.setattr(rst.Generator, "render", broken)
    result = scratch.run("generate", capsys=capsys)
    assert result.status == 2
    assert "internal error: RuntimeError: simulated generator failure" in result.err
    assert "Traceback" not in result.err
    assert scratch.tree() == before


def test_write_failure_leaves_generated_untouched(scratch, capsys, monkeypatch):
    assert scratch.run("generate", capsys=capsys).status == 0
    before = scratch.tree()
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00000200")
    from kvmspec import output
    real_write = Path.write_bytes
    calls = []

    def failing_write(self, data):
        calls.append(self)
        if len(calls) == 4:
            raise OSError(28, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    result = scratch.run("generate", capsys=capsys)
    monkeypatch.undo()
    assert result.status == 2
    assert "No space left on device" in result.err
    assert scratch.tree() == before
    assert not [p for p in scratch.root.iterdir() if p.name.startswith(output.TEMP_PREFIX)]


def test_leftovers_of_a_killed_run_are_removed(scratch, capsys):
    from kvmspec import output
    leftover = scratch.root / (output.TEMP_PREFIX + "dead")
    (leftover / "include").mkdir(parents=True)
    assert scratch.run("generate", capsys=capsys).status == 0
    assert not leftover.exists()


def test_root_that_is_not_a_repository(tmp_path, capsys):
    from kvmspec.cli import main
    assert main(["--root", str(tmp_path), "validate"]) == 2
    assert "not a kvmspec repository" in capsys.readouterr().err


def test_no_repository_above_the_current_directory(tmp_path):
    result = run_kvmspec("validate", cwd=tmp_path)
    assert result.status == 2
    assert "no kvmspec repository at or above" in result.err


def test_help_explains_each_command():
    result = run_kvmspec("--help")
    assert result.status == 0
    for words in ("validate", "generate", "exit status", "--root"):
        assert words in result.out
    generate_help = run_kvmspec("generate", "--help")
    assert "--check" in generate_help.out and "atomic" in generate_help.out


def test_unknown_command_is_a_usage_error():
    result = run_kvmspec("frobnicate")
    assert result.status == 2
    assert "invalid choice" in result.err


def test_every_generated_file_says_where_it_comes_from():
    """Each file names the spec files (or, for fixed support code, the
    template) it was made from, and the command that regenerates it."""
    import re
    checked = 0
    for path in sorted((REPO / "generated").rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.name == "py.typed":
            continue
        head = " ".join(path.read_text()[:4000].split())
        head = re.sub(r" ?(?:\*|#|\.\.) ", " ", head)  # comment leaders of wrapped lines
        match = re.search(r"Generated by kvmspec (?:from (.*?)\.|\((templates/[^)]*)\)\.) Do not edit", head)
        assert match, f"{path} does not say what it is generated from"
        if match.group(1):
            sources = match.group(1).split(", ")
            assert sources and all((REPO / s).is_file() and s.startswith("spec/") for s in sources), (path, sources)
        else:
            assert (REPO / "generators/kvmspec" / match.group(2)).is_file(), (path, match.group(2))
        assert "`kvmspec generate`" in head, path
        checked += 1
    assert checked >= 25


def two_processes(monkeypatch):
    from kvmspec import pipeline
    monkeypatch.setattr(pipeline, "cpus", lambda: 2)
    return pipeline


def test_two_processes_give_the_same_files_as_one(monkeypatch):
    from kvmspec import emit
    from kvmspec.build import load_model
    serial = emit.render_all(load_model(REPO))
    assert two_processes(monkeypatch).generate_files(REPO, parallel=True) == serial


def test_a_failure_in_the_second_process_is_reported_as_such(monkeypatch):
    from kvmspec.emit import tests as tests_generator
    pipeline = two_processes(monkeypatch)

    def broken(self, model, env):
        raise ZeroDivisionError("injected")
    monkeypatch.setattr(tests_generator.Generator, "render", broken)
    with pytest.raises(RuntimeError, match="(?s)the second process failed:.*ZeroDivisionError: injected"):
        pipeline.generate_files(REPO, parallel=True)


def test_a_second_process_that_ends_without_a_result_is_done_by_the_first(monkeypatch):
    """Killed (out of memory, a signal) before writing anything: the parent renders its part."""
    import os
    import signal
    from kvmspec import emit
    from kvmspec.build import load_model
    pipeline = two_processes(monkeypatch)
    monkeypatch.setattr(pipeline, "_child", lambda model, fd, sink, queue: os.kill(os.getpid(), signal.SIGKILL))
    assert pipeline.generate_files(REPO, parallel=True) == emit.render_all(load_model(REPO))


def parallel_generate(root):
    """kvmspec generate as the command runs it: two processes, each writing its share."""
    from kvmspec import output, pipeline
    with output.Rewrite(root) as rewrite:
        pipeline.generate_into(root, rewrite, parallel=True)
        return [s.path for s in rewrite.commit()]


def test_two_processes_write_each_share_and_give_the_tree_of_one(scratch, capsys, monkeypatch):
    """Each process writes the files it rendered; a share that did not change
    waits, and is written only if the other changed. The tree is the one a
    single process writes, whichever share changed."""
    two_processes(monkeypatch)
    assert scratch.run("generate", capsys=capsys).status == 0
    expected = scratch.tree()
    for stale in ("tests/kvm_abi_dump.c", "docs/index.rst"):   # the child's share, the parent's
        path = scratch.root / "generated" / stale
        path.write_text(path.read_text() + "stale\n")
        assert parallel_generate(scratch.root) == [f"generated/{stale}"]
        assert scratch.tree() == expected
    scratch.replace(NESTED, "value: 0x00000100", "value: 0x00000200")
    changed = parallel_generate(scratch.root)
    assert "generated/arch/x86/include/uapi/asm/kvm.h" in changed   # the parent's share
    assert "generated/python/kvm_uapi/__init__.py" in changed       # the child's
    assert scratch.run("generate", "--check", capsys=capsys).status == 0
    assert parallel_generate(scratch.root) == []
    assert not [p for p in scratch.root.iterdir() if p.name.startswith(".generated")]


def test_a_write_failure_in_the_second_process_is_redone_by_the_first(scratch, capsys, monkeypatch):
    """The child cannot write its share (say the disk filled up, then had room):
    the parent renders and writes it, and the tree is complete."""
    import os
    two_processes(monkeypatch)
    assert scratch.run("generate", capsys=capsys).status == 0
    expected = scratch.tree()
    (scratch.root / "generated" / "tests" / "kvm_abi_dump.c").write_text("stale\n")
    parent = os.getpid()
    real_write = Path.write_bytes

    def full_in_the_child(self, data):
        if os.getpid() != parent:
            raise OSError(28, "No space left on device", str(self))
        return real_write(self, data)
    monkeypatch.setattr(Path, "write_bytes", full_in_the_child)
    assert parallel_generate(scratch.root) == ["generated/tests/kvm_abi_dump.c"]
    monkeypatch.undo()
    assert scratch.tree() == expected


def test_the_two_processes_share_out_every_generator_once():
    from kvmspec import emit, pipeline
    assert sorted([pipeline.FIRST_IN_PARENT, *pipeline.QUEUE]) == sorted(emit.NAMES)


def test_a_second_process_killed_after_taking_generators_is_done_by_the_first(monkeypatch):
    """It took generators from the queue and was killed before it said so: the parent
    renders every generator it did not render itself."""
    import os
    import signal
    from kvmspec import emit
    from kvmspec.build import load_model
    pipeline = two_processes(monkeypatch)

    def takes_two_and_dies(model, fd, sink, queue):
        queue.take()
        queue.take()
        os.kill(os.getpid(), signal.SIGKILL)
    monkeypatch.setattr(pipeline, "_child", takes_two_and_dies)
    assert pipeline.generate_files(REPO, parallel=True) == emit.render_all(load_model(REPO))


def test_with_two_processes_an_invalid_spec_is_reported_once(scratch, monkeypatch):
    """The model is built once without the input checks; they run beside the
    child, and any problem, theirs or the model's, gives the SpecError a
    single checked process gives."""
    two_processes(monkeypatch)
    for old, new in (("value: 0x00000100", "value: 0x00000002"),      # overlaps a flag: a model rule
                     ("value: 0x00000100", "value: [0x100]"),         # not an integer: the schema
                     ("(nested virtualization), the", "(nested */ virtualization), the"),   # check_text
                     ("    check: [system, vm]", "    colour: blue\n    check: [system, vm]")):  # the schema
        scratch.write(NESTED, (REPO / NESTED).read_text().replace(old, new, 1))
        assert_two_processes_report_as_one(scratch.root)


def test_an_unlisted_spec_file_is_reported_with_two_processes(scratch, monkeypatch):
    from kvmspec.diagnostics import SpecError
    pipeline = two_processes(monkeypatch)
    scratch.write("spec/x86/stray.yaml", (REPO / NESTED).read_text())
    with pytest.raises(SpecError) as parallel:
        pipeline.generate_files(scratch.root, parallel=True)
    assert any("not listed" in d.message for d in parallel.value.diagnostics)


def test_input_checks_run_beside_the_build_and_are_redone_if_their_process_dies(scratch, monkeypatch):
    """The input checks run in the reader process (readahead.py) once it has
    handed its files over, while the model is built: a problem only they can
    see (text the build accepts) is reported, and the first process does not
    run them again. If the reader ends without an answer (killed), the first
    process runs them: the problem is still reported, and a clean spec still
    generates."""
    import os
    import signal
    from kvmspec import emit, readahead
    from kvmspec.build import Builder, load_model
    from kvmspec.diagnostics import SpecError
    pipeline = two_processes(monkeypatch)
    monkeypatch.setattr(readahead, "cpus", lambda: 2)
    parent = os.getpid()
    checked_in: list[int] = []
    clean = Builder.input_is_clean

    def recorded(self):
        checked_in.append(os.getpid())
        return clean(self)
    monkeypatch.setattr(Builder, "input_is_clean", recorded)
    cut = (REPO / NESTED).read_text().replace("(nested virtualization), the", "(nested */ virtualization), the", 1)
    scratch.write(NESTED, cut)
    for _ in range(2):   # the reader answers; then it dies before it can
        with pytest.raises(SpecError) as parallel:
            pipeline.generate_files(scratch.root, parallel=True)
        assert any("*/" in d.message for d in parallel.value.diagnostics)
        assert pipeline.generate_files(REPO, parallel=True) == emit.render_all(load_model(REPO))
        if not checked_in:   # the first round: the reader checked both specs
            read = Builder.read

            def dies_in_the_reader(self):
                if os.getpid() != parent and self.checked:
                    os.kill(os.getpid(), signal.SIGKILL)
                return read(self)
            monkeypatch.setattr(Builder, "read", dies_in_the_reader)
            continue
    assert checked_in == [parent, parent]


def test_help_and_docs_list_the_exit_statuses():
    result = run_kvmspec("--help")
    assert result.status == 0
    section = result.out[result.out.index("exit status:"):]
    for status in ("0  success", "1  the spec is invalid", "2  usage or environment problem", "internal error"):
        assert status in section, section
    for command in ("validate", "generate"):
        assert "exit status:" in run_kvmspec(command, "--help").out
    page = (REPO / "docs/cli.rst").read_text()
    assert "cli" in (REPO / "docs/index.rst").read_text()
    for status in ("``0``", "``1``", "``2``", "internal error", "path:line:col: error"):
        assert status in page


def test_nothing_changes_the_model_once_built(tmp_path):
    """The value types are frozen with KVMSPEC_FROZEN_MODEL=1: every command
    still works (an assignment would raise FrozenInstanceError) and the
    output is the same."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "spec", root / "spec")
    frozen = {"KVMSPEC_FROZEN_MODEL": "1"}
    assert run_kvmspec("--root", str(root), "generate", env=frozen).status == 0
    assert {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "generated").rglob("*") if p.is_file()} \
        == {f"generated/{p.relative_to(REPO / 'generated').as_posix()}": p.read_bytes()
            for p in (REPO / "generated").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    for command in (["validate"], ["compat", str(root), str(root)], ["diff-header", "--abi", "x86_64"]):
        result = run_kvmspec("--root", str(root), *command, env=frozen)
        assert result.status in (0, 1) and "FrozenInstanceError" not in result.err and "internal error" not in result.err, \
            (command, result.err)
    probe = subprocess.run([sys.executable, "-c", "import kvmspec.model as m, dataclasses; "
                            "print(m.Record.__dataclass_params__.frozen)"], env={**os.environ, **frozen},
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "True"
