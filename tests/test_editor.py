"""The editor experience: spec files under the real yaml-language-server.

Every spec file names the JSON Schema of the spec language in its first line
(`# yaml-language-server: $schema=...`), so an editor with the YAML language
server (VS Code's YAML extension, Neovim, Emacs, ...) checks it while it is
typed, completes keys and shows the schema's descriptions on hover. These
tests start the npm package `yaml-language-server` over stdio, speak LSP
(JSON-RPC) to it as an editor does, and look at what it answers.

The server is found in .tools/ (where .ci/run installs it), on PATH, or at
$KVMSPEC_YAML_LANGUAGE_SERVER; without node or the server the tests skip.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import REPO
from kvmspec.load import read_spec_file
from kvmspec.schema import ITEM_KINDS

SCHEMA = REPO / "spec/schema/kvmspec.schema.yaml"
MODELINE = "# yaml-language-server: $schema="
TIMEOUT = 60


def spec_files() -> list[Path]:
    """The manifest and every file it lists."""
    manifest = read_spec_file(REPO / "spec/kvmspec.yaml", "spec/kvmspec.yaml")
    return [REPO / "spec/kvmspec.yaml", *(REPO / "spec" / rel for rel in manifest["files"])]


def test_every_spec_file_declares_the_schema():
    """The first line of each spec file points, relative to the file, at the schema."""
    for path in spec_files():
        first = path.read_text().split("\n", 1)[0]
        assert first.startswith(MODELINE), f"{path}: first line is {first!r}"
        target = (path.parent / first[len(MODELINE):].strip()).resolve()
        assert target == SCHEMA.resolve(), f"{path}: the schema it names is {target}"


def server_command() -> list[str] | str:
    """The command that starts the server, or why there is none."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed (Debian: apt-get install nodejs npm)"
    candidates = [os.environ.get("KVMSPEC_YAML_LANGUAGE_SERVER", ""),
                  str(REPO / ".tools/node_modules/yaml-language-server/bin/yaml-language-server"),
                  shutil.which("yaml-language-server") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return [node, candidate, "--stdio"]
    return ("yaml-language-server is not installed (.ci/run installs it: "
            "npm install --prefix .tools yaml-language-server)")


class LanguageServer:
    """A minimal LSP client: requests, notifications, and the server's messages."""

    def __init__(self, command: list[str], root: Path) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        self.diagnostics: dict[str, list[dict]] = {}
        threading.Thread(target=self._read, daemon=True).start()
        self.request("initialize", {
            "processId": os.getpid(), "rootUri": root.as_uri(),
            "capabilities": {"textDocument": {"completion": {"completionItem": {"snippetSupport": False}},
                                              "hover": {"contentFormat": ["plaintext", "markdown"]},
                                              "publishDiagnostics": {}},
                             "workspace": {"configuration": True}}})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": self.settings()}})

    @staticmethod
    def settings() -> dict:
        return {"validate": True, "hover": True, "completion": True, "schemas": {}}

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.lower()] = value.strip()
            self.messages.put(json.loads(stream.read(int(headers["content-length"]))))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.process.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict) -> Any:
        self.next_id += 1
        ident = self.next_id
        self.send({"id": ident, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == ident and "method" not in m)["result"]

    def wait(self, wanted: Callable[[dict], bool]) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                message = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"yaml-language-server did not answer within {TIMEOUT} s") from None
            if message is None:
                raise AssertionError("yaml-language-server exited")
            if "method" in message and "id" in message:   # a request from the server
                result = None
                if message["method"] == "workspace/configuration":
                    result = [self.settings() for _ in message["params"]["items"]]
                self.send({"id": message["id"], "result": result})
                continue
            if message.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
            if wanted(message):
                return message

    def open(self, path: Path, text: str | None = None) -> list[dict]:
        """Open a document as an editor does; the diagnostics the server publishes for it."""
        uri = path.as_uri()
        self.diagnostics.pop(uri, None)
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": 1,
            "text": path.read_text() if text is None else text}})
        message = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                            and m["params"]["uri"] == uri)
        return message["params"]["diagnostics"]

    def completion(self, path: Path, line: int, character: int) -> list[dict]:
        result = self.request("textDocument/completion", {"textDocument": {"uri": path.as_uri()},
                                                          "position": {"line": line, "character": character}})
        return result["items"] if isinstance(result, dict) else (result or [])

    def hover(self, path: Path, line: int, character: int) -> str:
        result = self.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()},
                                                     "position": {"line": line, "character": character}})
        if not result:
            return ""
        contents = result["contents"]
        return contents["value"] if isinstance(contents, dict) else str(contents)

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.process.wait(timeout=10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server():
    command = server_command()
    if isinstance(command, str):
        pytest.skip(command)
    ls = LanguageServer(command, REPO)
    yield ls
    ls.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A spec/ with the schema, where test documents are written beside real ones."""
    (tmp_path / "spec/schema").mkdir(parents=True)
    (tmp_path / "spec/x86").mkdir()
    shutil.copy(SCHEMA, tmp_path / "spec/schema")
    return tmp_path / "spec"


NESTED = REPO / "spec/x86/nested-state.yaml"


def line_of(text: str, needle: str) -> int:
    """0-based line (LSP counts from 0) of the first occurrence of needle."""
    assert text.count(needle) == 1, needle
    return text[:text.index(needle)].count("\n")


def test_real_spec_files_have_no_diagnostics(server):
    """The schema that kvmspec validates with is one an editor accepts for every real file."""
    for path in spec_files():
        assert server.open(path) == [], path


def test_wrong_key_is_reported_at_its_line(server, workspace):
    text = NESTED.read_text().replace("    nr: 0xbe\n", "    nr: 0xbe\n    direction: rw\n", 1)
    path = workspace / "x86/nested-state.yaml"
    path.write_text(text)
    line = line_of(text, "    direction: rw\n")
    diagnostics = server.open(path)
    assert [(d["range"]["start"]["line"], d["range"]["start"]["character"]) for d in diagnostics] == [(line, 4)]
    assert "direction" in diagnostics[0]["message"], diagnostics


def test_wrong_type_is_reported_at_its_line(server, workspace):
    """since: 4.19 unquoted is a number to YAML, where the schema wants the string "4.19"."""
    original = NESTED.read_text()
    assert original.count('since: "4.19"') > 1
    text = original.replace('since: "4.19"', "since: 4.19", 1)
    path = workspace / "x86/nested-state.yaml"
    path.write_text(text)
    line = line_of(text, "since: 4.19")
    diagnostics = server.open(path)
    assert [d["range"]["start"]["line"] for d in diagnostics] == [line], diagnostics
    assert "string" in diagnostics[0]["message"].lower(), diagnostics


def test_completion_offers_every_item_kind(server, workspace):
    path = workspace / "x86/new.yaml"
    text = NESTED.read_text().split("\nitems:\n", 1)[0] + "\nitems:\n  - \n"
    path.write_text(text)
    assert server.open(path) != []   # an empty item is not valid yet
    labels = {item["label"] for item in server.completion(path, text.count("\n") - 1, 4)}
    assert set(ITEM_KINDS) <= labels, labels


def test_hover_shows_the_schema_description_of_the_key(server):
    text = NESTED.read_text()
    server.open(NESTED)
    ioctl = text.index("  - ioctl: KVM_GET_NESTED_STATE")
    nr = text.index("    nr:", ioctl)
    returns = text.index("    returns:", ioctl)
    assert "ioctl number within KVMIO" in server.hover(NESTED, text[:nr].count("\n"), 5)
    assert "What a successful call returns" in server.hover(NESTED, text[:returns].count("\n"), 6)
