"""The registry's queries cost the same however many versions a name has.

Measured in SQLite virtual-machine steps (a progress handler counts them), not in
seconds: the count is exact and the same on any machine, so the test cannot be flaky,
and it fails where a query walks every version of a name. Timings are in
``benchmarks/bench_registry.py``.
"""

from __future__ import annotations

import pytest

from llmops_magics.store import Registry


def _steps(reg: Registry, work) -> int:
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    reg._conn.set_progress_handler(tick, 1)
    try:
        work()
    finally:
        reg._conn.set_progress_handler(None, 1)
    return count[0]


@pytest.fixture
def reg(tmp_path):
    registry = Registry(tmp_path / ".llmops")
    yield registry
    registry.close()


def _fill(reg: Registry, start: int, stop: int) -> None:
    """Versions ``start..stop-1`` of ``prompt://p``, written fast (one transaction, shared blob)."""
    payload = reg.blobs.put_bytes(b"shared")
    with reg.transaction() as cur:
        cur.executemany(
            "INSERT INTO artifacts (kind, name, version, digest, payload, is_tree, size, created_at) "
            "VALUES ('prompt', 'p', ?, ?, ?, 0, 6, 0)",
            [(v, f"digest-{v}", payload) for v in range(start, stop)],
        )
        cur.execute(
            "INSERT INTO aliases (kind, name, alias, version, updated_at) VALUES ('prompt', 'p', 'latest', ?, 0) "
            "ON CONFLICT (kind, name, alias) DO UPDATE SET version=excluded.version",
            (stop - 1,),
        )


def test_saving_a_new_version_costs_the_same_at_20000_versions_as_at_100(reg):
    _fill(reg, 1, 101)
    small = _steps(reg, lambda: reg.save("prompt", "p", data=b"new at 100"))
    _fill(reg, 102, 20_102)
    large = _steps(reg, lambda: reg.save("prompt", "p", data=b"new at 20000"))
    assert large < 1.5 * small, (small, large)


def test_saving_content_an_old_version_holds_costs_the_same_at_20000_versions(reg):
    reg.save("prompt", "p", data=b"first")
    _fill(reg, 2, 102)
    small = _steps(reg, lambda: reg.save("prompt", "p", data=b"first"))
    _fill(reg, 102, 20_102)
    large = _steps(reg, lambda: reg.save("prompt", "p", data=b"first"))
    assert large < 1.5 * small, (small, large)


@pytest.mark.parametrize("ref", ["prompt://p/50", "p@latest", "p", "prompt://p"])
def test_resolving_costs_the_same_at_20000_versions(reg, ref):
    _fill(reg, 1, 101)
    reg.set_alias("prompt://p/50", "production")
    reg._cache.clear()
    small = _steps(reg, lambda: reg.resolve(ref))
    _fill(reg, 101, 20_101)
    reg._cache.clear()
    large = _steps(reg, lambda: reg.resolve(ref))
    assert large < 1.5 * small + 10, (small, large)


def test_a_page_of_names_costs_the_same_at_20000_versions(reg):
    reg.save("dataset", "d", data=b"rows")
    _fill(reg, 1, 101)
    small = _steps(reg, lambda: reg.names(limit=10))
    _fill(reg, 101, 20_101)
    large = _steps(reg, lambda: reg.names(limit=10))
    assert large < 1.5 * small + 10, (small, large)
    assert [(n.name, n.versions, n.latest) for n in reg.names()] == [("d", 1, 1), ("p", 20_100, 20_100)]
