"""bench_production.py runs (small): both servers, every row and column, plausible values."""

from __future__ import annotations

from conformance.bench_production import run


def test_bench_rows() -> None:
    rows = run(200)
    assert [row["server"] for row in rows] == ["taskstore", "redis + library"]
    for row in rows:
        for op in ("create", "get"):
            assert 0 < float(row[f"{op} µs/call"]) < 100_000, row  # type: ignore[arg-type]
            assert float(row[f"{op} server CPU µs/call"]) >= 0, row  # type: ignore[arg-type]
    for op in ("create", "get"):
        assert float(rows[1][f"{op} FCALL usec_per_call"]) > 0, rows[1]  # type: ignore[arg-type]
