"""Reading the spec in two processes (readahead.py): the data a reader hands
over is the data one process reads, and a reader that fails changes nothing
but the time."""

from __future__ import annotations

import marshal
import os
import signal
from pathlib import Path

import pytest

from conftest import REPO, assert_two_processes_report_as_one, same_data as same
from kvmspec import readahead
from kvmspec.load import pack, read_spec_file, unpack

NESTED = "spec/x86/nested-state.yaml"


def every_spec_file() -> list:
    return sorted(p for p in (REPO / "spec").rglob("*.yaml") if "schema" not in p.parts)


@pytest.mark.parametrize("path", every_spec_file(), ids=lambda p: str(p.relative_to(REPO)))
def test_packed_data_unpacks_to_the_same_data(path):
    shown = str(path.relative_to(REPO))
    data = read_spec_file(path, shown)
    assert same(unpack(marshal.loads(marshal.dumps(pack(data))), shown), data)


def test_same_sees_what_differs():
    """The comparison above can fail: a position, a spelling or a style that differs is seen."""
    from kvmspec.load import parse_yaml
    text = "a: 0x10\nb:\n  - x\nc: 'y'\n"
    base = parse_yaml(text, "f")
    assert same(base, parse_yaml(text, "f"))
    assert not same(base, parse_yaml(text.replace("0x10", "16"), "f"))          # a spelling
    assert not same(base, parse_yaml(text.replace("- x", "-  x"), "f"))         # a position
    assert not same(base, parse_yaml(text.replace("'y'", "y"), "f"))            # a style
    assert not same(base, parse_yaml(text, "g"))                                 # the file


def started(root):
    """A reader of the spec under root, whatever this machine's CPUs."""
    reader = readahead.ReadAhead
    saved = readahead.cpus
    readahead.cpus = lambda: 2
    try:
        return reader.start(root)
    finally:
        readahead.cpus = saved


def test_the_reader_hands_over_its_share_as_read():
    ahead = started(REPO)
    assert ahead is not None and ahead.share
    shares = [Path(p) for p in ahead.share]
    total = sum(p.stat().st_size for p in every_spec_file())
    share = sum(p.stat().st_size for p in shares)   # files are taken whole: close to SHARE of the bytes
    assert (readahead.SHARE - 0.1) * total <= share <= (readahead.SHARE + 0.1) * total
    for path in ahead.share:
        shown = str(Path(path).relative_to(REPO))
        assert same(ahead.take(Path(path)), read_spec_file(Path(path), shown)), path
    assert ahead.take(REPO / "spec" / "x86" / "nothing.yaml") is None


def test_work_while_waiting_runs_only_when_the_files_are_not_there_yet():
    """The first process does other work (pipeline: importing the renderers) when
    the reader's files have not come yet, once; not when they are there."""
    path = REPO / NESTED
    data = read_spec_file(path, NESTED)
    payload = marshal.dumps({str(path): (NESTED, pack(data))})

    def reader(ready: bool):
        read_end, write_end = os.pipe()
        if ready:
            os.write(write_end, payload)
            os.close(write_end)
        ahead = readahead.ReadAhead(0, read_end, path, None, (str(path),))
        calls = []

        def meanwhile():
            calls.append(1)
            if not ready:   # the files come once the work is done
                os.write(write_end, payload)
                os.close(write_end)
        ahead.while_waiting = meanwhile
        return ahead, calls

    def too_long(signum, frame):   # the work did not run, and the files never came
        raise AssertionError("the first process waited for files that only the work would bring")

    previous = signal.signal(signal.SIGALRM, too_long)
    try:
        for ready in (True, False):
            ahead, calls = reader(ready)
            signal.alarm(10)
            assert same(ahead.take(path), data)
            signal.alarm(0)
            assert calls == ([] if ready else [1])
            assert ahead.while_waiting is None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_reader_that_fails_hands_over_nothing(scratch):
    """A file of its share has an error: it hands over nothing, and the files are read here."""
    ahead = started(scratch.root)
    last = ahead.share[0]   # the last file of the manifest, the first it reads
    ahead.stop()
    with open(last, "a") as f:
        f.write("\n  broken: [\n")
    ahead = started(scratch.root)
    assert ahead.take(Path(last)) is None
    assert ahead.data == {}


def test_a_killed_reader_hands_over_nothing(scratch):
    ahead = started(scratch.root)
    os.kill(ahead.pid, signal.SIGKILL)
    assert ahead.take(Path(ahead.share[0])) is None


def test_an_error_in_the_readers_share_is_reported_as_one_process_reports_it(scratch, monkeypatch):
    """generate with a reader and a file of its share broken gives the diagnostics of a checked build."""
    from kvmspec import pipeline
    monkeypatch.setattr(pipeline, "cpus", lambda: 2)
    monkeypatch.setattr(readahead, "cpus", lambda: 2)
    ahead = started(scratch.root)
    last = ahead.share[0]
    ahead.stop()
    rel = os.path.relpath(last, scratch.root)
    scratch.write(rel, scratch.read(rel).replace("title:", "title: [", 1))
    assert_two_processes_report_as_one(scratch.root)
