"""%eval speed goals, in one run: batched vs per-example generation, cached re-run vs first run.

Goals: batched generation at least 3x the per-example throughput on 200 examples, and a
fully cached re-run at least 20x faster than the first run. The tiny model is built
once into ``.cache/bench-eval`` (a minute or two) and reused by later runs; the build
is not timed. W&B is off: this measures the eval, not the tracker.

    python benchmarks/bench_eval.py [--examples 200] [--max-new-tokens 16] [--batch-size 16] [--repeat 3]
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


def _rows(n: int) -> list[dict]:
    from llmops_magics.models.world import task_examples

    rows, seed = [], 0
    while len(rows) < n:
        rows += task_examples(seed)
        seed += 1
    return rows[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="Report the fastest of this many runs per case.")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's default). One by default: on a small shared machine, OpenMP "
        "threads contending with other processes make timings swing tenfold.",
    )
    parser.add_argument("--home", default=str(ROOT / ".cache" / "bench-eval" / ".llmops"))
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    import llmops_magics as lm
    from llmops_magics.context import workspaces as context
    from llmops_magics.evaluation.generations import clear_loaded_models
    from llmops_magics.evaluation.runner import cache_path
    from llmops_magics.evaluation.text_metrics import _rouge

    ws = context.configure(home=args.home, wandb_mode="disabled")
    built = time.perf_counter()
    model = lm.tiny_base_model(ws)
    build_s = time.perf_counter() - built
    lm.save_dataset("bench-qa", _rows(args.examples), workspace=ws)
    lm.save_prompt("bench-qa", "Question: {{ question }}\nAnswer:", workspace=ws)
    _rouge()  # a one-time library import, not part of any run
    common = dict(
        data="bench-qa",
        prompt="bench-qa",
        max_new_tokens=args.max_new_tokens,
        metrics=["exact_match", "contains", "rouge_l", "latency", "tokens"],
        workspace=ws,
    )

    def timed(**kw) -> tuple[float, object]:
        started = time.perf_counter()
        result = lm.evaluate(model.ref, **common, **kw).wait()
        return time.perf_counter() - started, result

    def cold() -> None:
        cache_file = cache_path(ws)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache_file}{suffix}").unlink(missing_ok=True)
        clear_loaded_models()

    def best(setup=None, **kw) -> tuple[float, object]:
        """The fastest of ``--repeat`` runs (the machine is shared: noise only ever adds time)."""
        runs = []
        for _ in range(args.repeat):
            if setup:
                setup()
            runs.append(timed(**kw))
        best.last = runs[-1][1]
        return min(runs, key=lambda r: r[0])

    timed(batch_size=args.batch_size, cache=False, limit=8)  # warm-up: load the model once
    single_s, single = best(batch_size=1, cache=False)
    batched_s, batched = best(batch_size=args.batch_size, cache=False)
    same = single.df["output"].tolist() == batched.df["output"].tolist()
    first_s, _ = best(setup=cold, batch_size=args.batch_size)
    filled = best.last  # the run that filled the cache the re-runs read
    rerun_s, rerun = best(batch_size=args.batch_size)

    n = args.examples
    rows = [
        ("per-example generation (batch 1)", single_s, n / single_s, "1.0x", ""),
        (
            f"batched generation (batch {args.batch_size})",
            batched_s,
            n / batched_s,
            f"{single_s / batched_s:.1f}x",
            ">= 3x " + ("met" if single_s / batched_s >= 3 else "MISSED"),
        ),
        ("first run (cold cache, model load)", first_s, n / first_s, "1.0x", ""),
        (
            f"cached re-run ({rerun.cache_hits}/{n} hits)",
            rerun_s,
            n / rerun_s,
            f"{first_s / rerun_s:.1f}x",
            ">= 20x " + ("met" if first_s / rerun_s >= 20 else "MISSED"),
        ),
    ]
    print(
        f"\n%eval benchmark: {n} examples, {model.ref} ({model.metadata.get('parameters', '?')} parameters), "
        f"max_new_tokens={args.max_new_tokens}, CPU threads={torch.get_num_threads()}, "
        f"best of {args.repeat}, model build {build_s:.1f}s (not timed below)"
    )
    head = f"{'case':<40} {'seconds':>8} {'examples/s':>11} {'speed-up':>9}  goal"
    print(head)
    print("-" * len(head))
    for name, secs, rate, speedup, goal in rows:
        print(f"{name:<40} {secs:>8.2f} {rate:>11.1f} {speedup:>9}  {goal}")
    print(f"batched outputs identical to per-example outputs: {same}")
    print(f"cached re-run returned the eval version of the run that filled the cache: {rerun.ref == filled.ref}")
    ws.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
