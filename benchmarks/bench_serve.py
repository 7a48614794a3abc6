"""Serving speed: static vs continuous batching at 16 and 64 concurrent clients with mixed answer lengths.

Run: ``make bench`` (or ``python benchmarks/bench_serve.py``). Starts one real server per
batching mode on 127.0.0.1 with the project's tiny model (built once and cached under
``.cache/bench-serve``), the same ``max_batch_size`` for each. N concurrent clients each
send streamed greedy completions one after another; every request asks for a length drawn
(seeded) from 4, 8, 16, 32 or 64 tokens with ``ignore_eos`` (as vLLM's benchmark does), so
the work is the same in every mode. The time to first token is measured at the client (the
first streamed text), the throughput is output tokens per second of wall time. Each cell is
measured ``--rounds`` times, alternating modes, and the best round is kept, so background
load on a shared machine hits both modes alike.

The static batcher groups requests with equal generation settings (length included) and
runs each group to its end; the continuous one admits requests into the running batch at
every token. Goals: continuous ≥ 1.5x the throughput of static, p95 time to first token
≤ half of static's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import percentile, print_table

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
LENGTHS = (4, 8, 16, 32, 64)


async def _one(client, model: str, prompt: str, max_tokens: int) -> tuple[float, float | None, int, bool]:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0}
    t = time.perf_counter()
    first, tokens, ok = None, 0, False
    async with client.stream(
        "POST", "/v1/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
    ) as r:
        if r.status_code != 200:
            await r.aread()
            return time.perf_counter() - t, None, 0, False
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                ok = ok or line == "data: [DONE]"
                continue
            event = json.loads(line[6:])
            if first is None and event.get("choices") and event["choices"][0].get("text"):
                first = time.perf_counter() - t
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    return time.perf_counter() - t, first, tokens, ok


async def _load(url: str, model: str, clients: int, per_client: int, seed: int) -> dict:
    import httpx

    rng = random.Random(seed)
    plan = [[(rng.choice(PROMPTS), rng.choice(LENGTHS)) for _ in range(per_client)] for _ in range(clients)]
    latencies, ttfts = [], []
    tokens = errors = 0

    async def client_loop(client, requests) -> None:
        nonlocal tokens, errors
        for prompt, length in requests:
            latency, first, n, ok = await _one(client, model, prompt, length)
            if not ok or n != length:
                errors += 1
                continue
            latencies.append(latency)
            ttfts.append(first if first is not None else latency)
            tokens += n

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        for prompt in PROMPTS[:2]:  # warm-up: first-request costs are not the steady state
            await _one(client, model, prompt, 2)
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, requests) for requests in plan))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "req_s": len(latencies) / elapsed,
        "tok_s": tokens / elapsed,
        "ttft_p50": percentile(ttfts, 0.5) * 1000,
        "ttft_p95": percentile(ttfts, 0.95) * 1000,
        "lat_p50": percentile(latencies, 0.5) * 1000,
        "lat_p95": percentile(latencies, 0.95) * 1000,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="16,64", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=256, help="requests per measurement (split over clients)")
    parser.add_argument("--modes", default="static,continuous", help="batching modes to compare")
    parser.add_argument("--max-batch-size", type=int, default=64, help="the same for every mode")
    parser.add_argument("--rounds", type=int, default=2, help="measure each cell this many times, keep the best")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="the static batcher's batching window")
    parser.add_argument("--home", default=str(ROOT / ".cache" / "bench-serve" / ".llmops"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from llmops_magics import deploy
    from llmops_magics.context import workspaces as context
    from llmops_magics.models import tiny_base_model

    ws = context.configure(home=args.home, wandb_mode="disabled")
    model = tiny_base_model(workspace=ws)
    counts = [int(c) for c in args.clients.split(",")]
    modes = args.modes.split(",")
    handles = {}
    best: dict[tuple[str, int], dict] = {}
    try:
        for mode in modes:
            handles[mode] = deploy(
                model.ref,
                name=f"bench-{mode}",
                batching=mode,
                max_batch_size=args.max_batch_size,
                max_wait_ms=args.max_wait_ms,
                workspace=ws,
            )
        for round_ in range(args.rounds):
            for clients in counts:
                per_client = max(1, args.requests // clients)
                for mode, handle in handles.items():
                    r = asyncio.run(_load(handle.url, handle.name, clients, per_client, seed=round_))
                    old = best.get((mode, clients))
                    if old is None or r["tok_s"] > old["tok_s"]:
                        best[(mode, clients)] = {**r, "errors": r["errors"] + (old or {}).get("errors", 0)}
    finally:
        for handle in handles.values():
            handle.stop()

    title = (
        f"bench_serve: {model.ref} on {os.cpu_count()} CPU core(s), greedy, streamed, lengths {LENGTHS} tokens"
        f" (ignore_eos), max_batch_size {args.max_batch_size}, 127.0.0.1, best of {args.rounds} round(s)"
    )
    columns = ["batching", "clients", "requests", "req/s", "tok/s", "TTFT p50 ms", "TTFT p95 ms"]
    columns += ["latency p50 ms", "latency p95 ms", "errors"]
    rows = []
    for mode in modes:
        for clients in counts:
            r = best[(mode, clients)]
            numbers = [r[k] for k in ("req_s", "tok_s", "ttft_p50", "ttft_p95", "lat_p50", "lat_p95")]
            rows.append([mode, clients, r["requests"], *(f"{v:.1f}" for v in numbers), r["errors"]])
    print_table(title, columns, rows)
    if {"static", "continuous"} <= set(modes):
        for clients in counts:
            s, c = best[("static", clients)], best[("continuous", clients)]
            print(
                f"{clients:>2} clients: continuous/static throughput {c['tok_s'] / s['tok_s']:.2f}x (goal >= 1.5x), "
                f"p95 TTFT {c['ttft_p95'] / s['ttft_p95']:.2f} of static's (goal <= 0.5)"
            )
    return 0 if all(r["errors"] == 0 for r in best.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
