"""Render the static pictures results show in a notebook to PNG for the README: ``docs/eval-chart.png``.

An A/B eval result is built from seeded synthetic scores (no model runs: the picture is
what is being shown), displayed the way a notebook displays it (its ``text/html``, in
which the charts are ``<img>`` of SVG) and photographed in Debian's chromium, the browser
the lab end-to-end test drives. The sidebar's trace tree and charts come from that test
(``LLMOPS_UPDATE_SCREENSHOTS=1 pytest tests/test_lab_e2e.py -k traces_section``).

    .venv/bin/python scripts/result_pictures.py [OUT_DIR]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser settings the e2e harness uses


def sample_eval(n: int = 60, seed: int = 7):
    """Prompt v1 (A) against v2 (B): v2 answers more questions exactly and gets most answers a little closer."""
    from llmops_magics.evaluation.results import EvalResult, MetricColumn
    from llmops_magics.evaluation.stats import compare_paired

    rng = random.Random(seed)
    em_a = [float(rng.random() < 0.55) for _ in range(n)]
    em_b = [1.0 if (x or rng.random() < 0.35) and rng.random() > 0.05 else 0.0 for x in em_a]
    rl_a = [min(1.0, max(0.0, rng.gauss(0.62, 0.15))) for _ in range(n)]
    rl_b = [min(1.0, max(0.0, x + rng.gauss(0.05, 0.08))) for x in rl_a]
    scores = {"A": {"exact_match": em_a, "rouge_l": rl_a}, "B": {"exact_match": em_b, "rouge_l": rl_b}}
    records = [
        {"example": i, "target": t, **{m: v[i] for m, v in scores[t].items()}} for t in ("A", "B") for i in range(n)
    ]
    columns = [MetricColumn(m, m, True, True, True) for m in ("exact_match", "rouge_l")]
    comparisons = [compare_paired(m, "A", "B", scores["A"][m], scores["B"][m]) for m in ("exact_match", "rouge_l")]
    summary = {t: {m: sum(v) / n for m, v in scores[t].items()} | {"n": n} for t in ("A", "B")}
    return EvalResult(
        targets=[{"label": "A", "name": "qa@v1"}, {"label": "B", "name": "qa@v2"}],
        data="dataset://tickets/3",
        split="test",
        reference_column="answer",
        columns=columns,
        records=records,
        summary=summary,
        comparisons=comparisons,
    )


def main(out: Path) -> None:
    from lab_harness import chromium

    data, _ = sample_eval()._repr_mimebundle_()
    html = (
        f"<html><body style='margin:12px;font-family:sans-serif'><div id='out'>{data['text/html']}</div></body></html>"
    )
    out.mkdir(parents=True, exist_ok=True)
    with chromium(viewport=(900, 1100)) as page:
        page.set_content(html)
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.locator("#out").screenshot(path=str(out / "eval-chart.png"))
    print(out / "eval-chart.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs")
