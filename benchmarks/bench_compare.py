"""Matrix evaluation and model comparison, in one run: a grid as one %eval call vs six, and what accounting costs.

Goals (issue 10): a 3 models x 2 prompts x 200 rows grid run as one ``%eval --model
M1,M2,M3 --prompt P1,P2`` call at least 2x faster than the same six cells as six
separate calls (shared batching and caching), and token/cost accounting under 2% of
the eval's time.

The three models are small local folders made the way the tests make them: the
project's tiny GPT-2, a copy of it with perturbed weights (another version: weights are
content-addressed) and a Llama-architecture model of another size with random weights.
They are built once into ``.cache/bench-compare`` and not timed. Every timed case starts
cold: the generation cache is emptied and loaded models are forgotten, so both sides
generate all 1,200 answers and load each model. W&B is off.

Both sides generate in the same batches. By default each call hands its batches to forked
workers, one per core (``evaluation.cells``): six calls do so a call at a time, the grid for
every cell at once. The ``--workers 1`` rows are both sides in one process, as before the
workers existed, so the table shows what the workers bring to each side.

Accounting is measured two ways. Directly: the ``latency`` and ``tokens`` metrics plus
the dollar cost of every answer at ``[tool.llmops.prices]``-style prices (what the
leaderboard does), timed over the grid's 1,200 records and divided by the grid's time.
End to end: the grid with and without ``latency,tokens`` in its metrics (noisy on a
shared machine: the difference is within run-to-run variation).

    python benchmarks/bench_compare.py [--examples 200] [--max-new-tokens 16] [--batch-size 16] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("LLMOPS_CACHE", str(ROOT / ".cache" / "llmops"))

from _table import print_table  # noqa: E402

PROMPTS = {
    "bench-terse": "Question: {{ question }}\nAnswer:",
    "bench-polite": "Please answer the question briefly.\nQuestion: {{ question }}\nAnswer:",
}
QUALITY = ["exact_match", "rouge_l"]
PRICES = {"input": 0.5, "output": 1.5}  # dollars per million tokens, as in [tool.llmops.prices]


def _rows(n: int) -> list[dict]:
    from llmops_magics.models.world import task_examples

    rows, seed = [], 0
    while len(rows) < n:
        rows += task_examples(seed)
        seed += 1
    return rows[:n]


def _perturbed(src: Path, dest: Path) -> Path:
    """The tiny GPT-2 with seeded noise on its weights: same architecture and size, another model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (dest / "config.json").exists():
        torch.manual_seed(1)
        model = AutoModelForCausalLM.from_pretrained(src)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        model.save_pretrained(dest)
        AutoTokenizer.from_pretrained(src).save_pretrained(dest)
    return dest


def _llama(tokenizer_from: Path, dest: Path) -> Path:
    """A Llama-architecture model of another size (random weights) with the GPT-2 tokenizer, as the tests build."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if not (dest / "config.json").exists():
        tok = AutoTokenizer.from_pretrained(tokenizer_from)
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.bos_token_id,
        )
        LlamaForCausalLM(config).save_pretrained(dest)
        tok.save_pretrained(dest)
    return dest


class HostedLike:
    """An OpenAI-compatible endpoint on 127.0.0.1 that answers every completion after a fixed delay.

    It stands for a hosted model, whose compute is not on this machine: what an eval waits
    for is the round trip. It runs in a process of its own (this script with
    ``--serve-hosted``), so its threads do not share the eval's interpreter lock. The answer
    is a deterministic function of the prompt, so both sides get the same outputs.
    """

    def __init__(self, name: str, delay_s: float) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-hosted", name, str(delay_s)], stdout=subprocess.PIPE, text=True
        )
        port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}/v1"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def serve_hosted(name: str, delay_s: float) -> None:
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a hosted API
        wbufsize = 1 << 16  # headers and body leave in one write (no Nagle/delayed-ACK stall)

        def log_message(self, *args):
            pass

        def _send(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._send({"object": "list", "data": [{"id": name, "object": "model"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            time.sleep(delay_s)
            text = f" {name} {len(body['prompt']) % 7}"
            usage = {"prompt_tokens": len(body["prompt"].split()), "completion_tokens": 2, "total_tokens": 0}
            self._send({"choices": [{"index": 0, "text": text, "finish_reason": "stop"}], "usage": usage})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.request_queue_size = 128
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


def accounting(records: list[dict], prices: dict[str, float]) -> float:
    """The leaderboard's per-answer cost over ``records`` (dollars); what the direct measurement times."""
    total = 0.0
    for rec in records:
        total += (rec["prompt_tokens"] * prices["input"] + rec["completion_tokens"] * prices["output"]) / 1e6
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="Report the fastest of this many runs per case.")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default).")
    parser.add_argument(
        "--endpoint-delay-ms", type=float, default=20.0, help="Round trip of the hosted-style endpoints (0: skip)."
    )
    parser.add_argument("--home", default=str(ROOT / ".cache" / "bench-compare" / ".llmops"))
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load would bury the tables
    if args.threads:
        torch.set_num_threads(args.threads)

    import llmops_magics as lm
    from llmops_magics.context import workspaces as context
    from llmops_magics.evaluation.generations import clear_loaded_models
    from llmops_magics.evaluation.metrics import Example, MetricContext, parse_metric_specs, run_metric
    from llmops_magics.evaluation.runner import cache_path
    from llmops_magics.evaluation.text_metrics import _rouge

    ws = context.configure(home=args.home, wandb_mode="disabled")
    built = time.perf_counter()
    tiny = lm.tiny_base_model(ws)
    folders = Path(args.home).parent / "models"
    folders.mkdir(parents=True, exist_ok=True)
    tiny_dir = ws.registry.checkout(tiny)
    models = [
        tiny,
        lm.register_model(str(_perturbed(tiny_dir, folders / "tiny-perturbed")), workspace=ws),
        lm.register_model(str(_llama(tiny_dir, folders / "small-llama")), workspace=ws),
    ]
    build_s = time.perf_counter() - built
    lm.save_dataset("bench-grid", _rows(args.examples), workspace=ws)
    for name, text in PROMPTS.items():
        lm.save_prompt(name, text, workspace=ws)
    _rouge()  # a one-time library import, not part of any run
    model_refs = [m.ref for m in models]
    common = dict(
        data="bench-grid",
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        workspace=ws,
    )

    def cold() -> None:
        cache_file = cache_path(ws)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache_file}{suffix}").unlink(missing_ok=True)
        clear_loaded_models()

    def grid(metrics, **kw):
        return lm.evaluate(
            [], model=",".join(model_refs), prompt=",".join(PROMPTS), metrics=metrics, **{**common, **kw}
        ).wait()

    def six(metrics, **kw):
        return [
            lm.evaluate(m, prompt=p, metrics=metrics, **{**common, **kw}).wait() for m in model_refs for p in PROMPTS
        ]  # model by model, as a user comparing them one at a time would

    def timed(fn, setup=cold):
        if setup:
            setup()
        started = time.perf_counter()
        out = fn()
        return time.perf_counter() - started, out

    full = [*QUALITY, "latency", "tokens"]
    cases = {
        "six": lambda: six(full),
        "grid": lambda: grid(full),
        "bare": lambda: grid(QUALITY),
        "wide": lambda: grid(full, batch_size=len(PROMPTS) * args.batch_size),
        "six1": lambda: six(full, workers=1),
        "grid1": lambda: grid(full, workers=1),
    }
    lm.evaluate(model_refs[0], prompt="bench-terse", metrics=QUALITY, limit=8, **common).wait()  # warm-up
    runs: dict[str, list] = {k: [] for k in cases}
    for _ in range(args.repeat):  # interleaved, so a busy spell on a shared machine hits every case alike
        for key, fn in cases.items():
            runs[key].append(timed(fn))
    (six_s, six_results), (grid_s, grid_result), (bare_s, _), (wide_s, _), (six1_s, _), (grid1_s, _) = (
        min(runs[k], key=lambda r: r[0]) for k in cases
    )
    rerun_s, rerun = min((timed(lambda: grid(full), setup=None) for _ in range(args.repeat)), key=lambda r: r[0])

    same = [r["output"] for res in six_results for r in res.records] == [
        r["output"] for r in sorted(grid_result.records, key=lambda r: (r["target"], r["example"]))
    ]
    records = grid_result.records
    target = None
    calls = parse_metric_specs(["latency", "tokens"])
    examples = [
        Example(
            index=r["example"],
            row={},
            prompt=r["prompt"],
            output=r["output"],
            reference=r["reference"],
            prompt_tokens=int(r["prompt_tokens"]),
            completion_tokens=int(r["completion_tokens"]),
            latency_s=float(r["latency_s"]),
            finish_reason=r["finish_reason"],
            cached=False,
        )
        for r in records
    ]
    ctx = MetricContext(target=target, options=None, judges=None)
    loops = 50
    started = time.perf_counter()
    for _ in range(loops):
        for call in calls:
            run_metric(call, examples, ctx)
        accounting(records, PRICES)
    account_s = (time.perf_counter() - started) / loops

    cells = len(model_refs) * len(PROMPTS)
    from llmops_magics.evaluation.cells import plan_workers

    grid_workers = plan_workers([], answers=10**6, units=10**6, workers=None)  # what "one per core" came to
    answers = cells * args.examples
    speedup = six_s / grid_s
    direct = account_s / grid_s
    e2e = grid_s / bare_s - 1
    print(
        f"\nbench_compare: {len(model_refs)} models x {len(PROMPTS)} prompts x {args.examples} rows "
        f"({answers} answers), max_new_tokens={args.max_new_tokens}, batch {args.batch_size}, "
        f"CPU threads={torch.get_num_threads()}, best of {args.repeat}, cold cache and no loaded model per run, "
        f"models built/registered in {build_s:.1f}s (not timed)"
    )
    for m in models:
        print(f"  {m.ref}: {m.metadata.get('architecture')}, {m.metadata.get('parameters')} parameters")
    print_table(
        "grid as one call vs six calls",
        ["case", "seconds", "answers/s", "speed-up", "goal"],
        [
            ["six separate %eval calls (one per cell)", f"{six_s:.2f}", f"{answers / six_s:.0f}", "1.00x", ""],
            [
                "one %eval grid call (--model M1,M2,M3 --prompt P1,P2)",
                f"{grid_s:.2f}",
                f"{answers / grid_s:.0f}",
                f"{speedup:.2f}x",
                ">= 2x " + ("met" if speedup >= 2 else "MISSED"),
            ],
            [
                "six calls, each in one process (--workers 1, as before forked workers)",
                f"{six1_s:.2f}",
                f"{answers / six1_s:.0f}",
                f"{six_s / six1_s:.2f}x",
                "",
            ],
            [
                "one grid call in one process (--workers 1)",
                f"{grid1_s:.2f}",
                f"{answers / grid1_s:.0f}",
                f"{six_s / grid1_s:.2f}x",
                "",
            ],
            [
                f"one grid call, batch {len(PROMPTS) * args.batch_size} (a model's {len(PROMPTS)} prompts batched together)",
                f"{wide_s:.2f}",
                f"{answers / wide_s:.0f}",
                f"{six_s / wide_s:.2f}x",
                "what batching across cells would buy",
            ],
            [
                f"the grid again, cached ({rerun.cache_hits}/{answers} hits)",
                f"{rerun_s:.2f}",
                f"{answers / rerun_s:.0f}",
                f"{six_s / rerun_s:.1f}x",
                "",
            ],
        ],
    )
    print_table(
        "token/cost accounting",
        ["measure", "seconds", "share of the grid call", "goal"],
        [
            [
                f"latency+tokens metrics and cost of {len(records)} answers (direct, mean of {loops})",
                f"{account_s:.5f}",
                f"{100 * direct:.3f}%",
                "< 2% " + ("met" if direct < 0.02 else "MISSED"),
            ],
            [
                "grid with latency,tokens minus grid without (end to end, noisy)",
                f"{grid_s - bare_s:+.2f}",
                f"{100 * e2e:+.1f}%",
                "",
            ],
        ],
    )
    if args.endpoint_delay_ms > 0:
        hosted = [HostedLike(f"hosted-{n}", args.endpoint_delay_ms / 1000) for n in range(len(model_refs))]
        urls = [h.url for h in hosted]

        def grid_hosted():
            return lm.evaluate([], model=",".join(urls), prompt=",".join(PROMPTS), metrics=QUALITY, **common).wait()

        def six_hosted():
            return [lm.evaluate(u, prompt=p, metrics=QUALITY, **common).wait() for u in urls for p in PROMPTS]

        try:
            hosted_runs: dict[str, list] = {"six": [], "grid": []}
            for _ in range(args.repeat):
                hosted_runs["six"].append(timed(six_hosted, setup=None))
                hosted_runs["grid"].append(timed(grid_hosted, setup=None))
            (hsix_s, hsix), (hgrid_s, hgrid) = (min(hosted_runs[k], key=lambda r: r[0]) for k in ("six", "grid"))
        finally:
            for h in hosted:
                h.close()
        hsame = [r["output"] for res in hsix for r in res.records] == [
            r["output"] for r in sorted(hgrid.records, key=lambda r: (r["target"], r["example"]))
        ]
        print_table(
            f"the same grid over {len(urls)} hosted-style endpoints ({args.endpoint_delay_ms:g} ms a request, "
            f"{args.batch_size} in flight per endpoint; endpoints are never cached)",
            ["case", "seconds", "answers/s", "speed-up", "goal"],
            [
                ["six separate %eval calls (one per cell)", f"{hsix_s:.2f}", f"{answers / hsix_s:.0f}", "1.00x", ""],
                [
                    "one %eval grid call (endpoints on different servers asked at once)",
                    f"{hgrid_s:.2f}",
                    f"{answers / hgrid_s:.0f}",
                    f"{hsix_s / hgrid_s:.2f}x",
                    ">= 2x " + ("met" if hsix_s / hgrid_s >= 2 else "MISSED"),
                ],
            ],
        )
        print(f"hosted grid outputs identical to the six calls' outputs: {hsame}")
    print(f"grid outputs identical to the six calls' outputs: {same}")
    print(
        f"generation work is the same on both sides ({answers} answers in the same batches of {args.batch_size}); "
        f"by default both hand the batches to {grid_workers} forked workers, a call at a time for the six calls, "
        f"every cell at once for the grid; the grid also makes {len(grid_result.comparisons)} paired comparisons "
        "against its first cell"
    )
    print(f"cost of the grid's answers at ${PRICES['input']}/${PRICES['output']} per M tokens: "
          f"${accounting(records, PRICES):.6f}")  # fmt: skip
    ws.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-hosted"]:
        serve_hosted(sys.argv[2], float(sys.argv[3]))
    raise SystemExit(main())
