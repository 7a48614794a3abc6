"""Registry speed: `%load_ext` in fresh kernels, and save/resolve latency as one name grows to 100,000
versions and the registry to 1,000,000 artifacts.

Run: .venv/bin/python benchmarks/bench_registry.py [--versions 100000] [--bucket 10000]
                                                   [--total 1000000] [--kernels 5]

Every save is a real ``save_prompt`` (blob written and fsynced, one SQLite transaction; W&B
off). Each bucket row is the save latency of that bucket's versions and the resolve latency
measured when the bucket is full. The other artifacts of the 1,000,000 are written straight
into the database (they only need to exist for the queries to wade through).
Goals (issue 15): save p50 <= 2 ms, no bucket over 1.5x the first, resolve by alias <= 0.05 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import percentile, print_table, summary_ms

LOAD_CODE = (
    "import time as _t; _s = _t.perf_counter(); get_ipython().run_line_magic('load_ext', 'llmops_magics'); "
    "print(round(_t.perf_counter() - _s, 6))"
)


def _stream_text(kc, code: str) -> str:
    chunks: list[str] = []

    def hook(msg) -> None:
        if msg["msg_type"] == "stream":
            chunks.append(msg["content"].get("text", ""))

    kc.execute_interactive(code, timeout=60, output_hook=hook)
    return "".join(chunks)


def load_ext_seconds(kernels: int) -> list[float]:
    """Start a real ipykernel per sample and time `%load_ext llmops_magics` inside it."""
    from jupyter_client.manager import start_new_kernel

    out = []
    for _ in range(kernels):
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            out.append(float(_stream_text(kc, LOAD_CODE).strip()))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return out


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def fill_others(reg, count: int) -> None:
    """``count`` artifacts over 1,000-version names, written in bulk (one shared blob)."""
    payload = reg.blobs.put_bytes(b"filler")
    per_name = 1000
    now = time.time()
    for start in range(0, count, 50_000):
        rows = [
            (f"filler-{i // per_name}", i % per_name + 1, f"d{i}", payload, now)
            for i in range(start, min(count, start + 50_000))
        ]
        with reg.transaction() as cur:
            cur.executemany(
                "INSERT INTO artifacts (kind, name, version, digest, payload, is_tree, size, created_at) "
                "VALUES ('dataset', ?, ?, ?, ?, 0, 6, ?)",
                rows,
            )
            cur.executemany(
                "INSERT OR REPLACE INTO aliases (kind, name, alias, version, updated_at) VALUES ('dataset', ?, 'latest', ?, ?)",
                [(name, version, created) for name, version, _, _, created in rows if version == per_name],
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--bucket", type=int, default=10_000)
    ap.add_argument("--total", type=int, default=1_000_000, help="artifacts in the registry in all (0: skip)")
    ap.add_argument("--kernels", type=int, default=5)
    ap.add_argument("--samples", type=int, default=500)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LLMOPS_HOME"] = str(Path(tmp) / ".llmops")
        os.environ["LLMOPS_WANDB_MODE"] = "disabled"
        import llmops_magics as lm

        loads = load_ext_seconds(args.kernels) if args.kernels else []
        reg = lm.registry()
        lm.save_prompt("bench", "first {{ question }}", aliases=["production"])
        buckets = []
        started = time.perf_counter()
        for b in range(0, args.versions, args.bucket):
            saves = timed(lambda i, b=b: lm.save_prompt("bench", f"version {b + i}: {{{{ question }}}}"), args.bucket)
            by_alias = timed(lambda i: reg.resolve("prompt://bench@production"), args.samples)
            by_number = timed(
                lambda i, b=b: reg.resolve(f"prompt://bench/{(i * 7919) % (b + args.bucket) + 1}"), args.samples
            )
            buckets.append((b + args.bucket, saves, by_alias, by_number))
            print(f"  {b + args.bucket} versions: save p50 {percentile(saves, 0.5) * 1000:.3f} ms", file=sys.stderr)
        fill = time.perf_counter() - started

        first = percentile(buckets[0][1], 0.5)
        rows = [
            [
                f"{n - args.bucket + 1:>6}-{n}",
                *summary_ms(saves)[:2],
                f"{percentile(saves, 0.5) / first:.2f}x",
                *summary_ms(alias)[:2],
                *summary_ms(number)[:2],
            ]
            for n, saves, alias, number in buckets
        ]
        print_table(
            f"save_prompt and resolve as prompt://bench grows to {args.versions} versions "
            f"(filled in {fill:.0f} s, {args.versions / fill:.0f} saves/s)",
            ["versions", "save p50 ms", "save p95 ms", "p50 vs first", "alias p50 ms", "alias p95 ms",
             "bench/N p50 ms", "bench/N p95 ms"],
            rows,
        )  # fmt: skip

        rows = []
        if loads:
            rows.append([f"%load_ext llmops_magics (fresh kernel, n={len(loads)})", *summary_ms(loads)])
        if args.total:
            have = reg._query("SELECT COUNT(*) FROM artifacts")[0][0]
            t = time.perf_counter()
            fill_others(reg, max(0, args.total - have))
            bulk = time.perf_counter() - t
            total = reg._query("SELECT COUNT(*) FROM artifacts")[0][0]
            rows += [
                [f"save_prompt, new version ({total:,} artifacts)", *summary_ms(timed(lambda i: lm.save_prompt("bench", f"late {i}"), args.samples))],
                ["save_prompt, unchanged (dedup hit)", *summary_ms(timed(lambda i: lm.save_prompt("bench", "version 7: {{ question }}"), args.samples))],
                ["resolve bench@production", *summary_ms(timed(lambda i: reg.resolve("prompt://bench@production"), args.samples))],
                ["resolve bench (bare name, latest)", *summary_ms(timed(lambda i: reg.resolve("bench"), args.samples))],
                ["resolve prompt://bench/N (cold, distinct N)", *summary_ms(timed(lambda i: reg.resolve(f"prompt://bench/{i * 97 + 1}"), args.samples))],
                ["one page of 100 names (sidebar listing)", *summary_ms(timed(lambda i: reg.names(limit=100, offset=i * 3), 50))],
            ]  # fmt: skip
            print(f"  bulk-wrote {args.total - have:,} filler artifacts in {bulk:.0f} s", file=sys.stderr)
        if rows:
            print_table(
                "llmops-magics registry, fresh kernels and a full registry",
                ["operation", "p50 ms", "p95 ms", "mean ms"],
                rows,
            )


if __name__ == "__main__":
    main()
