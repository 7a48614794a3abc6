"""Registry speed: `%load_ext` in fresh kernels, save and resolve latency with 10,000 versions stored.

Run: .venv/bin/python benchmarks/bench_registry.py [--versions 10000] [--kernels 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table, summary_ms

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--kernels", type=int, default=5)
    ap.add_argument("--samples", type=int, default=300)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LLMOPS_HOME"] = str(Path(tmp) / ".llmops")
        os.environ["LLMOPS_WANDB_MODE"] = "disabled"
        import llmops_magics as lm
        from llmops_magics.store import Registry

        rows = []
        loads = load_ext_seconds(args.kernels)
        rows.append([f"%load_ext llmops_magics (fresh kernel, n={len(loads)})", *summary_ms(loads)])

        reg = lm.registry()
        started = time.perf_counter()
        for i in range(args.versions):
            lm.save_prompt("bench", f"version {i}: {{{{ question }}}}", aliases=["production"] if i == 42 else [])
        fill = time.perf_counter() - started

        def timed(fn, n=args.samples) -> list[float]:
            out = []
            for i in range(n):
                t = time.perf_counter()
                fn(i)
                out.append(time.perf_counter() - t)
            return out

        rows.append(
            [
                f"save_prompt, new version ({args.versions}+ stored)",
                *summary_ms(timed(lambda i: lm.save_prompt("bench", f"extra {i} {{{{ q }}}}"))),
            ]
        )
        rows.append(
            [
                "save_prompt, unchanged (dedup hit)",
                *summary_ms(timed(lambda i: lm.save_prompt("bench", "version 7: {{ question }}"))),
            ]
        )
        rows.append(
            ["resolve prompt://bench/N (warm cache)", *summary_ms(timed(lambda i: reg.resolve("prompt://bench/5000")))]
        )
        rows.append(
            [
                "resolve prompt://bench/N (cold, distinct N)",
                *summary_ms(timed(lambda i: reg.resolve(f"prompt://bench/{i * 30 + 1}"))),
            ]
        )
        rows.append(
            ["resolve bench@production", *summary_ms(timed(lambda i: reg.resolve("prompt://bench@production")))]
        )
        rows.append(["resolve bench (latest)", *summary_ms(timed(lambda i: reg.resolve("prompt://bench")))])
        rows.append(
            [
                "get_prompt('bench@production') + render",
                *summary_ms(timed(lambda i: lm.get_prompt("bench@production").render(question="q"))),
            ]
        )
        fresh = Registry(reg.home)
        rows.append(
            [
                "resolve in a second process' registry object",
                *summary_ms(timed(lambda i: fresh.resolve(f"prompt://bench/{i + 1}"))),
            ]
        )
        verify_t = time.perf_counter()
        report = reg.verify()
        verify_s = time.perf_counter() - verify_t

        print_table(
            f"llmops-magics registry benchmark ({args.versions} versions stored; filled in {fill:.1f} s, "
            f"{args.versions / fill:.0f} saves/s; verify() re-hashed {report.blobs} blobs in {verify_s:.2f} s)",
            ["operation", "p50 ms", "p95 ms", "mean ms"],
            rows,
        )


if __name__ == "__main__":
    main()
