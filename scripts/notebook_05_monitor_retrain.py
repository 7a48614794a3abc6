"""The cells of notebooks/05-monitor-retrain.ipynb, kept as reviewable source.

Written by ``scripts/make_notebooks.py 05``, which holds the other notebooks' cells too.
"""

from __future__ import annotations

MONITOR_RETRAIN = [
    (
        "md",
        "# 05 · The loop: monitor, feedback, retrain, canary, promote\n\n"
        "A deployed adapter meets users who start asking in a way it was never trained on. The drift monitor fails, "
        "a reviewer marks the bad answers and writes the right ones, the corrections become a dataset, and one "
        "`retrain` call fine-tunes a candidate, gates it against production, serves it as a canary to simulated "
        "users, judges the A/B test and promotes it. Every step is an artifact, so the lineage of the new "
        "deployment version shows the whole loop.\n\n"
        "Everything runs offline on CPU with the project's tiny model (about two minutes on two cores).",
    ),
    (
        "code",
        "%load_ext llmops_magics\n"
        "import itertools\n"
        "import random\n"
        "import threading\n"
        "import time\n"
        "import warnings\n\n"
        "import requests\n\n"
        "import llmops_magics as L\n"
        "from llmops_magics.models import tiny_base_model\n"
        "from llmops_magics.models.world import make_world\n\n"
        'warnings.filterwarnings("ignore", category=FutureWarning)\n'
        "random.seed(0)\n"
        "# a copy left running by an earlier run of this notebook would hold the name\n"
        'if "animals-svc" in {d["name"] for d in L.list_deployments()}:\n'
        '    L.stop_deployment("animals-svc")',
    ),
    (
        "md",
        "## 1. An adapter that knows one phrasing\n\n"
        "A made-up world (seeded) of countries, each with a national animal the tiny base model read about. "
        '`animals-lora` is fine-tuned for 60 steps on "What is the national animal of X?" for 48 countries; '
        "the other 12 are a golden set it never trains on.",
    ),
    (
        "code",
        "WORLD = make_world(0)\n"
        'STANDARD, DRIFTED = "What is the national animal of {}?", "Which animal stands for {}?"\n\n\n'
        "def rows(form, countries):\n"
        '    return [{"question": form.format(c.name), "answer": c.animal} for c in countries]\n\n\n'
        "base = tiny_base_model()\n"
        'data = L.save_dataset("animals", rows(STANDARD, WORLD[:48]), validation_fraction=0.25, seed=0)\n'
        'v1 = L.finetune(data.ref, max_steps=60, seed=0, name="animals-lora").wait().ref\n'
        "v1",
    ),
    (
        "md",
        "## 2. Serve it\n\n"
        "`--log-text` keeps each request's text in the request log: the drift check compares those texts with the "
        "training data, and the dataset built from the log later needs them.",
    ),
    ("code", "svc = %deploy {v1} --name animals-svc --log-text --threads 1\nsvc"),
    (
        "md",
        "## 3. The traffic drifts\n\n"
        'Users start asking "Which animal stands for X?". The adapter never saw that phrasing, so its answers '
        "suffer. `%monitor` checks a window of the request log (here: just these requests) and fails on input drift.",
    ),
    (
        "code",
        "drifted = rows(DRIFTED, WORLD[:40])\ntime.sleep(1.0)  # a quiet second: the window holds the drifted requests only\n"
        "began, ids = time.time(), []\n"
        "for i, row in enumerate(drifted):\n"
        '    body = {"model": "animals-svc", "variables": {"question": row["question"]}, "max_tokens": 4,\n'
        '            "temperature": 0.0, "user": f"early-{i}"}\n'
        '    ids.append(requests.post(f"{svc.url}/v1/completions", json=body, timeout=30).json()["id"])\n'
        "deadline = time.time() + 30  # the server writes its log in the background: wait until it holds them all\n"
        'while L.deployment_status("animals-svc", window_s=time.time() - began).summary["all"]["requests"] < len(ids):\n'
        '    assert time.time() < deadline, "the request log is behind"\n'
        "    time.sleep(0.2)\n"
        'window = f"{time.time() - began + 0.5:.2f}s"\n'
        "report = %monitor animals-svc --window {window} --checks drift\n"
        "assert report.failed\n"
        "report",
    ),
    (
        "md",
        "## 4. Feedback marks the bad answers\n\n"
        "A reviewer (here a loop; in the notebook UI `%monitor review animals-svc` steps through the log) rates "
        "each answer down and writes the answer it should have given. Ratings and corrections are stored next to "
        "the logged requests.",
    ),
    (
        "code",
        "for rid, row in zip(ids, drifted):\n"
        '    L.feedback("animals-svc", rid, label="down", correction=row["answer"])\n'
        "len(ids)",
    ),
    (
        "md",
        "## 5. A dataset from the log\n\n"
        "The corrected answers are training rows. `%dataset from-log` turns them into a dataset version linked to "
        "the deployment; `retrain --on-failure` below builds the same rows itself and links them to the failing "
        "monitor run too.",
    ),
    (
        "code",
        "corrections = %dataset from-log animals-svc --since {began} --where feedback=corrected --with-corrections\n"
        'print(corrections.ref, corrections.num_rows, "rows")\n'
        '[(r["prompt"], r["answer"]) for r in corrections.records()[:3]]',
    ),
    (
        "md",
        "## 6. Retrain, gate, canary, promote\n\n"
        "One call runs the loop's second half: the corrections are appended to the old training rows, the adapter "
        "is fine-tuned again from its stored spec, the candidate must not regress against production on held-out "
        "rows (the gate), then it serves 50% of the users as a canary until the A/B test's stop rule decides. "
        "The settings keep it quick (60 steps, an A/B analysis every second, small user counts); the magic is "
        "`%retrain --on-failure MONITOR_REF --canary 50 --train max_steps=60 …`.",
    ),
    (
        "code",
        "job = L.retrain(\n"
        "    on_failure=report.ref,\n"
        "    canary=50.0,\n"
        '    train={"max_steps": 60},\n'
        '    gate={"max_new_tokens": 6},\n'
        '    ab={"metrics": "feedback,error_rate", "min_users": 10, "tuning": 100},\n'
        "    ab_interval=1.0,\n"
        "    ab_timeout=120.0,\n"
        ")\n"
        "job",
    ),
    (
        "md",
        "### Simulated users for the canary\n\n"
        "Sixty users with sticky ids ask in the new phrasing about every country and rate each answer: up when it "
        "names the country's true animal, down otherwise. Each user is assigned to one arm by a hash of the id. "
        "They start once the pipeline reaches its A/B step and stop when it ends.",
    ),
    (
        "code",
        "class Users:\n"
        '    """Sticky simulated users asking from ``pool`` and rating every answer against the true animal."""\n\n'
        "    def __init__(self, url, pool, users=60, workers=2):\n"
        "        self.url, self.pool, self.users, self.sent = url, pool, users, 0\n"
        "        self.stop, self.counter = threading.Event(), itertools.count()\n"
        "        self.threads = [threading.Thread(target=self.work, daemon=True) for _ in range(workers)]\n\n"
        "    def work(self):\n"
        "        while not self.stop.is_set():\n"
        "            i = next(self.counter)\n"
        '            user, row = f"user-{i % self.users}", self.pool[(i // self.users + i) % len(self.pool)]\n'
        '            body = {"model": "animals-svc", "variables": {"question": row["question"]}, "max_tokens": 4,\n'
        '                    "temperature": 0.0, "user": user}\n'
        "            try:\n"
        '                r = requests.post(f"{self.url}/v1/completions", json=body, timeout=30)\n'
        "                if r.status_code != 200:  # a server being replaced\n"
        "                    continue\n"
        "                out = r.json()\n"
        '                label = "up" if row["answer"] in out["choices"][0]["text"] else "down"\n'
        '                requests.post(f"{self.url}/v1/feedback", json={"request_id": out["id"], "label": label, "user": user},\n'
        "                              timeout=30)\n"
        "                self.sent += 1\n"
        "            except requests.RequestException:\n"
        "                time.sleep(0.1)\n\n"
        "    def __enter__(self):\n"
        "        for t in self.threads:\n"
        "            t.start()\n"
        "        return self\n\n"
        "    def __exit__(self, *exc):\n"
        "        self.stop.set()\n"
        "        for t in self.threads:\n"
        "            t.join(30)\n\n\n"
        'while not job.done and job.progress.get("stage") not in ("ab", "promote", "rollback"):\n'
        "    time.sleep(0.2)\n"
        "with Users(svc.url, rows(DRIFTED, WORLD)) as users:\n"
        "    pipeline = job.wait(300)\n"
        'print(users.sent, "rated requests during the A/B test")\n'
        "pipeline",
    ),
    (
        "md",
        "The decision, and the A/B analysis behind it: the users split between the arms as the 50% canary share "
        "says (no sample-ratio mismatch, which would block any verdict), and the users rate the canary's answers "
        "higher.",
    ),
    (
        "code",
        "import json\n\n"
        'ab = json.loads(L.registry().read_bytes(pipeline.ref_of("ab")))\n'
        'rated = next(m for m in ab["metrics"] if m["metric"] == "feedback")\n'
        'assert pipeline.decision == "promoted", pipeline.reason\n'
        'assert not ab["srm"]["blocked"] and rated["means"][1] > rated["means"][0]\n'
        'print(pipeline.decision, "| sample-ratio mismatch:", ab["srm"]["blocked"])',
    ),
    (
        "code",
        'print("users per arm (primary, canary):", ab["srm"]["counts"], "| p =", round(ab["srm"]["p_value"], 3))\n'
        'print("mean rating (primary, canary):", [round(m, 2) for m in rated["means"]])\n'
        "print(pipeline.reason)",
    ),
    (
        "md",
        "## 7. The lineage of the promoted deployment\n\n"
        "The new deployment version's upstream: the old deployment was monitored, the failing monitor run made the "
        "dataset, the dataset trained the adapter, the gate's eval compared it with production, and the gate let the "
        "canary and then the new version through.",
    ),
    (
        "code",
        "reg = L.registry()\n"
        "new = pipeline.result  # the promoted deployment version\n"
        "relations = {}\n"
        "for e in reg.upstream(new, depth=8):\n"
        "    relations.setdefault((e.source, e.target), []).append(e.relation)\n"
        'loop = [report.deployment, report.ref, pipeline.ref_of("combine"), pipeline.ref_of("finetune"),\n'
        '        pipeline.ref_of("gate"), new]\n'
        "for source, target in zip(loop, loop[1:]):\n"
        "    print(f\"{source:34} --{','.join(relations[source, target])}--> {target}\")\n"
        "print(f\"\\n{reg.resolve('deployment://animals-svc@production').ref} serves \"\n"
        "      f\"{reg.resolve('adapter://animals-lora@production').ref}; {len(relations)} links upstream in all\")",
    ),
    ("code", "%deploy stop animals-svc"),
]
