"""Serving speed: static vs continuous batching at 16 and 64 concurrent clients with mixed answer lengths.

Run: ``make bench`` (or ``python benchmarks/bench_serve.py``). Starts one real server per
batching mode on 127.0.0.1 with the project's tiny model (built once and cached under
``.cache/bench-serve``), the same ``max_batch_size`` for each. N concurrent clients take
requests from one seeded list, each sending its next one when its last is answered (streamed,
greedy); every request asks for a length drawn from 4, 8, 16, 32 or 64 tokens with ``ignore_eos`` (as vLLM's benchmark does), so
the work is the same in every mode. The time to first token is measured at the client (the
first streamed text), the throughput is output tokens per second of wall time. Each cell is
measured ``--rounds`` times, alternating modes, and the best round is kept, so background
load on a shared machine hits both modes alike.

Each cell runs streamed (time to first token measured) and with whole answers: streamed,
the server's HTTP loop sends an event per token, which on two shared cores caps both modes
alike; whole answers show the engines. The static batcher groups requests with equal
generation settings (length included) and runs each group to its end; the continuous one admits requests into the running batch at
every token. Goals: continuous ≥ 1.5x the throughput of static, p95 time to first token
≤ half of static's.

Then (``--adapters N``) one process serving N LoRA adapters of the base by name, with the
requests spread over them, against one process serving one adapter: goal throughput
within 20%, and the resident memory of the N-adapter process about the base plus the
adapters (both reported).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import deque
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


async def _one(
    client, url: str, model: str, prompt: str, max_tokens: int, stream: bool = True
) -> tuple[float, float | None, int, bool]:
    """One completion, streamed or whole; aiohttp, as vLLM's benchmark client (httpx's parsing costs
    the shared cores more than the server under test at 64 streams)."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0}
    t = time.perf_counter()
    first, tokens, ok = None, 0, False
    if not stream:
        async with client.post(url + "/v1/completions", json=body) as r:
            payload = await r.json() if r.status == 200 else {}
        return time.perf_counter() - t, None, payload.get("usage", {}).get("completion_tokens", 0), r.status == 200
    payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
    async with client.post(url + "/v1/completions", json=payload) as r:
        if r.status != 200:
            await r.read()
            return time.perf_counter() - t, None, 0, False
        async for raw in r.content:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                ok = ok or line == "data: [DONE]"
                continue
            event = json.loads(line[6:])
            if first is None and event.get("choices") and event["choices"][0].get("text"):
                first = time.perf_counter() - t
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    return time.perf_counter() - t, first, tokens, ok


async def _load(url: str, models: list[str], clients: int, per_client: int, seed: int, stream: bool = True) -> dict:
    """``clients`` closed-loop clients taking ``clients * per_client`` requests from one seeded list, as
    vLLM's ``benchmark_serving --max-concurrency`` does; each request names one of ``models`` (round
    robin). One shared list, not a list per client: with lists per client the run ended with the
    client whose draws were longest running alone, and measured that tail rather than the server."""
    import aiohttp

    rng = random.Random(seed)
    plan = deque(
        (models[i % len(models)], rng.choice(PROMPTS), rng.choice(LENGTHS)) for i in range(clients * per_client)
    )
    latencies, ttfts = [], []
    tokens = errors = 0

    async def client_loop(client) -> None:
        nonlocal tokens, errors
        while plan:
            model, prompt, length = plan.popleft()
            latency, first, n, ok = await _one(client, url, model, prompt, length, stream)
            if not ok or n != length:
                errors += 1
                continue
            latencies.append(latency)
            if first is not None:
                ttfts.append(first)
            tokens += n

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as client:
        for model in models:  # warm-up: first-request costs are not the steady state
            await _one(client, url, model, PROMPTS[0], 2)
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "req_s": len(latencies) / elapsed,
        "tok_s": tokens / elapsed,
        "ttft_p50": percentile(ttfts, 0.5) * 1000 if ttfts else float("nan"),
        "ttft_p95": percentile(ttfts, 0.95) * 1000 if ttfts else float("nan"),
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
    parser.add_argument("--adapters", type=int, default=8, help="adapters in the one-process comparison (0: skip it)")
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
            for stream in (True, False):
                for clients in counts:
                    per_client = max(1, args.requests // clients)
                    for mode, handle in handles.items():
                        url, name = handle.url, handle.name
                        r = asyncio.run(_load(url, [name], clients, per_client, seed=round_, stream=stream))
                        old = best.get((mode, clients, stream))
                        if old is None or r["tok_s"] > old["tok_s"]:
                            errors = r["errors"] + (old or {}).get("errors", 0)
                            best[(mode, clients, stream)] = {**r, "errors": errors}
    finally:
        for handle in handles.values():
            handle.stop()

    title = (
        f"bench_serve: {model.ref} on {os.cpu_count()} CPU core(s), greedy, lengths {LENGTHS} tokens"
        f" (ignore_eos), max_batch_size {args.max_batch_size}, 127.0.0.1, best of {args.rounds} round(s)"
    )
    columns = ["batching", "answers", "clients", "requests", "req/s", "tok/s", "TTFT p50 ms", "TTFT p95 ms"]
    columns += ["latency p50 ms", "latency p95 ms", "errors"]
    rows = []
    for stream in (True, False):
        for mode in modes:
            for clients in counts:
                r = best[(mode, clients, stream)]
                numbers = [r[k] for k in ("req_s", "tok_s", "ttft_p50", "ttft_p95", "lat_p50", "lat_p95")]
                how = "streamed" if stream else "whole"
                rows.append([mode, how, clients, r["requests"], *(f"{v:.1f}" for v in numbers), r["errors"]])
    print_table(title, columns, rows)
    if {"static", "continuous"} <= set(modes):
        for stream in (True, False):
            for clients in counts:
                s, c = best[("static", clients, stream)], best[("continuous", clients, stream)]
                ttft = f", p95 TTFT {c['ttft_p95'] / s['ttft_p95']:.2f} of static's (goal <= 0.5)" if stream else ""
                print(
                    f"{clients:>2} clients, {'streamed' if stream else 'whole answers'}: continuous/static throughput "
                    f"{c['tok_s'] / s['tok_s']:.2f}x (goal >= 1.5x){ttft}"
                )
    ok = all(r["errors"] == 0 for r in best.values())
    if args.adapters:
        ok = bench_adapters(args, ws, model, counts) and ok
    return 0 if ok else 1


def _adapter_folders(ws, model, n: int) -> list[str]:
    """``n`` LoRA adapters of the tiny base (random B, so each answers differently), registered once."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    refs = []
    for i in range(n):
        name = f"bench-lora-{i}"
        folder = Path(ws.registry.home).parent / "adapters" / name
        if not (folder / "adapter_config.json").is_file():
            import torch

            torch.manual_seed(i)
            base = AutoModelForCausalLM.from_pretrained(ws.registry.checkout(model))
            lora = LoraConfig(r=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True, init_lora_weights=False)
            get_peft_model(base, lora).save_pretrained(folder)
        meta = {"base_model": model.ref, "base_digest": model.digest}
        refs.append(ws.registry.save("adapter", name, path=folder, metadata=meta).artifact.ref)
    return refs


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_adapters(args, ws, model, counts: list[int]) -> bool:
    """One process serving one adapter vs one process serving N adapters of the same base, side by side."""
    from llmops_magics import deploy

    refs = _adapter_folders(ws, model, args.adapters)
    named = tuple(f"a{i}={ref}" for i, ref in enumerate(refs[1:], start=1))
    plans = {
        "1 adapter": (dict(name="bench-one"), lambda h: [refs[0]]),
        f"{args.adapters} adapters": (dict(name="bench-many", adapters=named), lambda h: [refs[0], *(n.split("=")[0] for n in named)]),
    }  # fmt: skip
    handles, best, memory = {}, {}, {}
    try:
        for label, (extra, _) in plans.items():
            handles[label] = h = deploy(refs[0], max_batch_size=args.max_batch_size, workspace=ws, **extra)
            memory[label] = {"loaded": _rss_mib(h.pid)}
        for round_ in range(args.rounds):
            for clients in counts:
                for label, (_, names) in plans.items():
                    h = handles[label]
                    r = asyncio.run(_load(h.url, names(h), clients, max(1, args.requests // clients), seed=round_))
                    if (label, clients) not in best or r["tok_s"] > best[(label, clients)]["tok_s"]:
                        best[(label, clients)] = r
        for label, h in handles.items():
            memory[label]["after"] = _rss_mib(h.pid)
    finally:
        for h in handles.values():
            h.stop()
    base_mib = sum(f.stat().st_size for f in Path(ws.registry.checkout(model)).glob("*.safetensors")) / 2**20
    lora_mib = sum(f.stat().st_size for r in refs for f in Path(ws.registry.checkout(r)).glob("*.safetensors")) / 2**20
    title = (
        f"bench_serve adapters: {args.adapters} LoRA adapters (r=8, c_attn+c_proj) of {model.ref} in one process vs one "
        f"adapter, continuous batching, requests spread round robin over the adapters, best of {args.rounds} round(s)"
    )
    columns = ["served", "clients", "requests", "tok/s", "TTFT p95 ms", "latency p95 ms", "errors", "RSS MiB"]
    rows = [
        [label, c, r["requests"], f"{r['tok_s']:.1f}", f"{r['ttft_p95']:.1f}", f"{r['lat_p95']:.1f}", r["errors"],
         f"{memory[label]['after']:.0f}"]
        for (label, c), r in best.items()
    ]  # fmt: skip
    print_table(title, columns, sorted(rows, key=lambda row: (row[1], row[0])))
    one, many = plans
    for clients in counts:
        ratio = best[(many, clients)]["tok_s"] / best[(one, clients)]["tok_s"]
        print(f"{clients:>2} clients: {many} reach {ratio:.2f}x the throughput of 1 adapter (goal >= 0.80)")
    grown = memory[many]["loaded"] - memory[one]["loaded"]
    print(
        f"resident memory after loading: 1 adapter {memory[one]['loaded']:.0f} MiB, {many} {memory[many]['loaded']:.0f} MiB "
        f"(+{grown:.1f} MiB for {args.adapters - 1} more adapters holding {lora_mib * (args.adapters - 1) / args.adapters:.1f} "
        f"MiB of weights; the base's weights are {base_mib:.1f} MiB, loaded once)"
    )
    return all(r["errors"] == 0 for r in best.values())


if __name__ == "__main__":
    sys.exit(main())
