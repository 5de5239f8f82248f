"""docs/clients.md is generated from this session's results and the snippet files.

The committed page must be what the suite renders: a changed snippet, a new client version
in package-lock.json or a failing row shows up as a difference here. The version and handshake
cells of clients this repository does not pin (redis-py from PyPI, Debian's redis-tools) are
not compared (gen_docs.comparable). ``TASKSTORE_UPDATE_DOCS=1`` writes the page instead of
checking it, and only when every row of the table ran in this session.
"""

from __future__ import annotations

import difflib
import os

import pytest

from .conftest import EXPECTED_ROWS, ROWS
from .gen_docs import DOC, SNIPPETS, SNIPPETS_DIR, comparable, render, snippet_blocks


def test_clients_doc_snippets_are_the_files() -> None:
    """Independent of the results: every code block of the page is a snippet file, verbatim."""
    blocks = snippet_blocks(DOC.read_text())
    files = [(SNIPPETS_DIR / name).read_text().rstrip() + "\n" for name, *_ in SNIPPETS]
    assert blocks == files, "docs/clients.md is stale: TASKSTORE_UPDATE_DOCS=1 regenerates it"


@pytest.mark.clients_doc
def test_clients_doc_table() -> None:
    missing = [n for n in EXPECTED_ROWS if ROWS.get(n) is None or ROWS[n].result == "not run"]
    if not EXPECTED_ROWS:
        pytest.skip("no test of the client matrix was selected")
    if missing:
        pytest.skip(f"only part of the client matrix ran ({len(missing)} rows missing)")
    rows = [ROWS[n] for n in EXPECTED_ROWS]
    text = render(rows)
    if os.environ.get("TASKSTORE_UPDATE_DOCS") == "1":
        DOC.write_text(text)
    failed = [f"{r.client} {r.version} {r.options}: {r.result}" for r in rows if r.result != "pass"]
    assert not failed, "rows that did not pass:\n" + "\n".join(failed)
    committed = comparable(DOC.read_text())
    rendered = comparable(text)
    diff = "\n".join(
        difflib.unified_diff(
            committed.splitlines(), rendered.splitlines(), "committed", "rendered", lineterm=""
        )
    )
    assert committed == rendered, (
        "docs/clients.md differs from what the suite renders; regenerate it with "
        "TASKSTORE_UPDATE_DOCS=1 scripts/test.sh tests/compat\n" + diff
    )
