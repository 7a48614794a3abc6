"""Serving speed: throughput and p50/p95 latency at 1, 4 and 16 concurrent clients, batched vs unbatched.

Run: ``make bench`` (or ``python benchmarks/bench_serve.py``). Starts two real
servers on 127.0.0.1 with the project's tiny model (built once and cached under
``.cache/bench-serve``): one with dynamic batching (``max_batch_size=16``), one
unbatched (``max_batch_size=1``). For each client count it sends a fixed number
of greedy completions from N concurrent clients to one, then the other, then
repeats (``--rounds``) and keeps each cell's best round, so background load on
a shared machine hits both modes alike. Every completion is ``--max-tokens``
long (``ignore_eos``, as vLLM's benchmark does), so each request is the same
work. Prints one table; the goal is a batching speed-up of at least 3x at 16
clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [
    "The capital of",
    "In the north the flag is",
    "People in the capital like the",
    "The national animal of",
    "The flag of",
    "has a green flag and its capital is",
    "The capital of the land is",
    "In the south the flag is",
]


async def _load(url: str, model: str, clients: int, per_client: int, max_tokens: int) -> dict:
    import httpx

    latencies: list[float] = []
    tokens = errors = 0

    async def client_loop(client: httpx.AsyncClient, i: int) -> None:
        nonlocal tokens, errors
        for j in range(per_client):
            prompt = PROMPTS[(i + j) % len(PROMPTS)]
            body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True}
            t = time.perf_counter()
            r = await client.post("/v1/completions", json={**body, "temperature": 0})
            latencies.append(time.perf_counter() - t)
            if r.status_code == 200:
                tokens += r.json()["usage"]["completion_tokens"]
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        for prompt in PROMPTS[:2]:  # warm-up: first-request costs are not the steady state
            await client.post("/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": 2})
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "req_s": n / elapsed,
        "tok_s": tokens / elapsed,
        "p50_ms": latencies[n // 2] * 1000,
        "p95_ms": latencies[min(n - 1, int(n * 0.95))] * 1000,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=64, help="requests per measurement (split over clients)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="measure each cell this many times, keep the best")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="the batched server's batching window")
    parser.add_argument("--home", default=str(ROOT / ".cache" / "bench-serve" / ".llmops"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from llmops_magics import deploy
    from llmops_magics.context import context
    from llmops_magics.models import tiny_base_model

    ws = context.configure(home=args.home, wandb_mode="disabled")
    model = tiny_base_model(workspace=ws)
    counts = [int(c) for c in args.clients.split(",")]
    modes = {"batched": 16, "unbatched": 1}
    handles = {}
    best: dict[tuple[str, int], dict] = {}
    try:
        for mode, batch in modes.items():
            handles[mode] = deploy(
                model, name=f"bench-{mode}", max_batch_size=batch, max_wait_ms=args.max_wait_ms, workspace=ws
            )
        for _ in range(args.rounds):
            for clients in counts:
                per_client = max(1, args.requests // clients)
                for mode, handle in handles.items():
                    r = asyncio.run(_load(handle.url, handle.name, clients, per_client, args.max_tokens))
                    old = best.get((mode, clients))
                    if old is None or r["req_s"] > old["req_s"]:
                        best[(mode, clients)] = {**r, "errors": r["errors"] + (old or {}).get("errors", 0)}
    finally:
        for handle in handles.values():
            handle.stop()

    print(
        f"\nbench_serve: {model.ref} on {os.cpu_count()} CPU core(s), greedy, {args.max_tokens} tokens per completion,"
        f" 127.0.0.1, best of {args.rounds} round(s)"
    )
    header = f"{'mode':<10} {'clients':>7} {'requests':>8} {'req/s':>8} {'tok/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for mode in modes:
        for clients in counts:
            r = best[(mode, clients)]
            print(
                f"{mode:<10} {clients:>7} {r['requests']:>8} {r['req_s']:>8.1f} {r['tok_s']:>8.1f} "
                f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['errors']:>6}"
            )
    for clients in counts:
        speedup = best[("batched", clients)]["req_s"] / best[("unbatched", clients)]["req_s"]
        print(f"batching speed-up at {clients:>2} client(s): {speedup:.2f}x")
    return 0 if all(r["errors"] == 0 for r in best.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
