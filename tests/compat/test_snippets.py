"""The snippets of docs/clients.md are files (tests/compat/snippets/); each runs here, as a
user would run it, against a fresh server, and must print the expected lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import need_tool

from .conftest import COMPAT, SNIPPETS, need_node
from .gen_docs import SNIPPET_OUTPUT
from .gen_docs import SNIPPETS as DOC_SNIPPETS

RUNNERS = {".py": lambda: sys.executable, ".mjs": need_node, ".sh": lambda: "sh"}


def test_every_snippet_file_is_in_the_docs() -> None:
    assert sorted(p.name for p in SNIPPETS.iterdir()) == sorted(s[0] for s in DOC_SNIPPETS)


@pytest.mark.parametrize("name", [s[0] for s in DOC_SNIPPETS])
def test_snippet(name: str, server) -> None:
    path = SNIPPETS / name
    if path.suffix == ".sh":
        need_tool("redis-cli")
    res = subprocess.run(
        [RUNNERS[path.suffix](), str(path)],
        cwd=COMPAT,
        env={**os.environ, "TASKSTORE_URL": server.url},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    lines, expected = res.stdout.splitlines(), SNIPPET_OUTPUT.splitlines()
    assert len(lines) == len(expected), res.stdout
    assert lines[:2] == expected[:2]
    # the result comes back byte for byte as the snippet sent it (Python's json.dumps adds
    # spaces), so compare it as JSON
    assert json.loads(lines[2]) == json.loads(expected[2])
    assert lines[3:] == expected[3:]
