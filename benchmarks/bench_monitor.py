"""Monitor cost: every check over 100,000 logged requests, in one run (goal: under 5 s on 2 cores);
and what logging costs a server (``serving_cost``: request log on vs off, goal under 3%).

Run: ``.venv/bin/python benchmarks/bench_monitor.py`` (``--rows N`` to change the size).
Writes ``--rows`` synthetic requests from the last hour (1% errors, a 10% canary,
QA-like rendered prompts with their answers, texts logged) plus 5,000 older ones into a
real request log through the server's own writer (``RequestLog``), registers a reference
data set of 2,000 rows, a model and a deployment record pointing at that log (no server
process: the monitor reads the log and the registry, never the server), then runs
``monitor(NAME)`` twice: the first run loads MiniLM and embeds the reference sample, the
second finds both in the process. Prints both whole runs (read, every check, the artifact
saved), then the parts of a run timed one by one (MiniLM loaded, reference not cached). The quality check is skipped (it
needs an eval baseline and a judge endpoint); it judges ``sample`` requests (30), so its
cost does not grow with the log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table

TEMPLATE = "Question: {{ question }}\nAnswer:"
SYLLABLES = ("ner", "lou", "kav", "tem", "dor", "sil", "asor", "zen", "ia", "ova", "bun", "kes")
COUNTRIES = [f"{a}{b}{c}".capitalize() for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]  # 1,728 names
QUESTIONS = ["What is the capital of {c}?", "What color is the flag of {c}?", "What is the national animal of {c}?"]


def question(rng: random.Random) -> str:
    return rng.choice(QUESTIONS).format(c=rng.choice(COUNTRIES))


def write_log(path: Path, rows: int, older: int, now: float) -> float:
    from llmops_magics.serving.requestlog import RequestLog

    rng = random.Random(0)
    log = RequestLog(path, log_text=True)
    started = time.perf_counter()
    for i in range(older + rows):
        ts = now - 3600 - 600 * (older - i) / older if i < older else now - 3500 + 3400 * (i - older) / rows
        text = TEMPLATE.replace("{{ question }}", question(rng))
        failed = rng.random() < 0.01
        latency = rng.lognormvariate(3.5, 0.4)
        tokens = rng.randint(2, 8)
        log.record({
            "ts": ts, "request_id": f"r{i}", "endpoint": "/v1/completions", "arm": "canary" if i % 10 == 0 else "primary",
            "version": "model://bench-model/1", "user": f"u{i % 500}", "status": 500 if failed else 200,
            "latency_ms": latency, "ttft_ms": latency * 0.3, "queue_ms": 1.0, "prompt_tokens": 12,
            "completion_tokens": None if failed else tokens, "batch_size": 4, "stream": 0, "input_chars": len(text),
            "input_text": text, "output_text": None if failed else " Suntom" * (tokens // 2),
        })  # fmt: skip
    log.close(timeout=600)
    return time.perf_counter() - started


def scaffold(ws, name: str, db: Path, reference_rows: int):
    """A model, a reference data set and a deployment record whose log is ``db`` (what %deploy leaves behind)."""
    from llmops_magics import save_dataset
    from llmops_magics.ops.deploy import DeploySpec

    rng = random.Random(1)
    reg = ws.registry
    data = save_dataset("bench-ref", [{"question": question(rng), "answer": "x"} for _ in range(reference_rows)],
                        workspace=ws)  # fmt: skip
    model = reg.save("model", "bench-model", data=b"{}", metadata={"prompt_template": TEMPLATE}).artifact
    spec = DeploySpec(target=model.ref, name=name, log_text=True, reference_data=data.ref)
    dep = reg.save("deployment", name, data=json.dumps(spec.to_dict()).encode(), parents=[(model, "serves")]).artifact
    config = reg.home / "deployments" / name / "config-v1.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"spec": spec.to_dict(), "runtime": {}}))
    reg.put_state("deployments", name, {"name": name, "ref": dep.ref, "target": model.ref, "status": "running",
                                        "monitor_db": str(db), "config_path": str(config),
                                        "started_at": time.time() - 7200})  # fmt: skip
    return spec


def parts(ws, spec, db: Path, now: float) -> list[list[str]]:
    """A first run's parts, timed one by one, in the order ``monitor`` runs them."""
    from llmops_magics.models.embeddings import embed
    from llmops_magics.monitoring import run as monitor_run
    from llmops_magics.monitoring.checks import DEFAULTS, classifier_check, embedding_check, length_check, slo_checks
    from llmops_magics.monitoring.drift import subsample
    from llmops_magics.monitoring.reference import reference_texts
    from llmops_magics.serving.requestlog import read_requests

    out = []

    def timed(label, fn):
        t = time.perf_counter()
        value = fn()
        out.append([label, f"{time.perf_counter() - t:.3f}"])
        return value

    start = now - 3600
    rows = timed("read the window (texts included)", lambda: read_requests(db, since=start, until=now, with_text=True))
    out[-1][0] += f": {len(rows):,} rows"
    timed("service levels (p95 latency, p95 ttft, error rate, throughput)",
          lambda: slo_checks(rows, span_s=3600, limits=DEFAULTS))  # fmt: skip
    ref = timed("reference data rendered through the template", lambda: reference_texts(ws, spec, 2000))
    live = [r for r in rows if r["status"] < 400]
    texts = [r["input_text"] for r in live]
    timed("input length: PSI + KS", lambda: length_check("input_length", [len(t) for t in ref],
                                                          [r["input_chars"] for r in live], DEFAULTS))  # fmt: skip
    previous = timed("read 5,000 requests before the window", lambda: read_requests(db, until=start, limit=5000))
    timed("output length: PSI + KS", lambda: length_check("output_length", [r["completion_tokens"] for r in previous
          if r["completion_tokens"]], [r["completion_tokens"] for r in live], DEFAULTS))  # fmt: skip
    timed(f"domain classifier ({monitor_run.CLASSIFIER_SAMPLES:,} a side, 1,000 permutations)",
          lambda: classifier_check(ref, texts, DEFAULTS))  # fmt: skip
    n = monitor_run.EMBED_SAMPLES
    ref_emb = timed(f"embed {n} reference texts (once per data set)", lambda: embed(subsample(ref, n, 0)))
    live_emb = timed(f"embed {n} live texts", lambda: embed(subsample(texts, n, 1)))
    timed("MMD, 500 permutations", lambda: embedding_check(ref_emb, live_emb, DEFAULTS))
    return out


def serving_cost(rounds: int, requests: int, clients: int) -> None:
    """Serving throughput with the request log off (``--no-request-log``), rows only (the default),
    and rows with texts (redacted, or as they came with ``--no-redact-log``).

    Four servers side by side, the same load on each in turn (the order rotated every round, so
    none always runs first); best and median of ``rounds``, the cost against the server that logs
    nothing. On a shared machine one round's throughput swings by tens of percent, so the last
    column pairs each round with the "off" run of the same round (seconds apart, same requests)
    and takes the median of those ratios.
    """
    import asyncio
    import statistics

    from bench_serve import _load

    from llmops_magics import deploy
    from llmops_magics.context import workspaces as context
    from llmops_magics.models import tiny_base_model

    ws = context.configure(home=str(Path(__file__).resolve().parent.parent / ".cache" / "bench-serve" / ".llmops"),
                           wandb_mode="disabled")  # fmt: skip
    model = tiny_base_model(workspace=ws)
    modes = {
        "off (--no-request-log)": {"request_log": False},
        "rows only (the default)": {"log_text": False},
        "rows + texts, redacted (default with --log-text)": {"log_text": True},
        "rows + texts, not redacted (--no-redact-log)": {"log_text": True, "redact_log": False},
    }
    handles, runs = {}, {}
    try:
        for i, (label, extra) in enumerate(modes.items()):
            handles[label] = deploy(model.ref, name=f"bench-log-{i}", workspace=ws, **extra)
        labels = list(handles)
        for round_ in range(rounds):
            for label in labels[round_ % len(labels) :] + labels[: round_ % len(labels)]:
                h = handles[label]
                r = asyncio.run(_load(h.url, [h.name], clients, requests // clients, seed=round_, stream=False))
                runs.setdefault(label, []).append(r)
    finally:
        for h in handles.values():
            h.stop()
    best = {label: max(rs, key=lambda r: r["tok_s"])["tok_s"] for label, rs in runs.items()}
    median = {label: statistics.median(r["tok_s"] for r in rs) for label, rs in runs.items()}
    off = next(iter(modes))
    rows = [[label, f"{best[label]:.1f}", f"{median[label]:.1f}", f"{100 * (1 - best[label] / best[off]):+.1f}%",
             f"{100 * (1 - median[label] / median[off]):+.1f}%",
             f"{100 * statistics.median(1 - a['tok_s'] / b['tok_s'] for a, b in zip(rs, runs[off], strict=True)):+.1f}%",
            f"{statistics.median(r['lat_p95'] for r in rs):.1f}", sum(r["errors"] for r in rs)]
            for label, rs in runs.items()]  # fmt: skip
    print_table(
        f"serving {model.ref} with {clients} clients, whole answers of 4-64 tokens, {rounds} round(s)",
        ["request log", "best tok/s", "median tok/s", "cost vs off (best)", "cost vs off (median)",
         "cost vs off (median of rounds paired)", "median latency p95 ms", "errors"],
        rows,
    )  # fmt: skip


def cold_cli(home: Path, name: str) -> float:
    """Wall time of ``llmops monitor`` in a fresh interpreter: imports, MiniLM, the log, every check, the save."""
    cli = Path(sys.executable).with_name("llmops")
    env = {**os.environ, "LLMOPS_WANDB_MODE": "disabled"}
    t = time.perf_counter()
    done = subprocess.run([str(cli), "--home", str(home), "monitor", name, "--window", "1h", "--checks", "slo,drift"],
                          env=env, capture_output=True, text=True)  # fmt: skip
    took = time.perf_counter() - t
    if done.returncode not in (0, 1):  # 1: a check failed, still a complete run
        raise SystemExit(f"llmops monitor failed ({done.returncode}): {done.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--serving-rounds", type=int, default=2, help="0: skip the serving comparison")
    args = ap.parse_args()
    if args.serving_rounds:
        serving_cost(args.serving_rounds, requests=256, clients=16)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LLMOPS_HOME"] = str(Path(tmp) / ".llmops")
        os.environ["LLMOPS_WANDB_MODE"] = "disabled"
        os.chdir(tmp)  # no project's [tool.llmops.monitor]: the defaults
        import llmops_magics as lm
        from llmops_magics.context.workspaces import configure

        ws = configure(home=os.environ["LLMOPS_HOME"], wandb_mode="disabled")  # not the serving comparison's
        now = time.time()
        db = ws.registry.home / "monitoring" / "bench-svc.sqlite"
        wrote = write_log(db, args.rows, 5000, now)
        print(f"wrote {args.rows + 5000:,} requests in {wrote:.1f} s", file=sys.stderr)
        spec = scaffold(ws, "bench-svc", db, 2000)
        runs = []
        for label in (
            "first run in a fresh process (loads MiniLM)",
            "second run (reference texts and embeddings kept)",
        ):
            t = time.perf_counter()
            report = lm.monitor("bench-svc", window="1h", checks="slo,drift", workspace=ws)
            runs.append([f"monitor(), every check: {label}", f"{time.perf_counter() - t:.3f}"])
        runs.append(["`llmops monitor` in a new process (as cron runs it; reference embeddings on disk)",
                     f"{cold_cli(ws.registry.home, 'bench-svc'):.3f}"])  # fmt: skip
        from llmops_magics.monitoring import reference

        reference._cache.clear()  # the parts below start without the reference cached
        rows = parts(ws, spec, db, now)
        statuses = ", ".join(f"{c.name}={c.status}" for c in report.checks)
        print_table(
            f"all checks over {args.rows:,} logged requests (2,000 reference rows); {report.ref}: {statuses}",
            ["step", "seconds"],
            runs + rows,
        )


if __name__ == "__main__":
    main()
