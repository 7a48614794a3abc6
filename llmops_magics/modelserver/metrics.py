"""Prometheus metrics of one server process, exposed at ``GET /metrics``.

A private ``CollectorRegistry`` (not the global default) so two services in one
process, or a test that builds an app twice, never collide on metric names.
Names follow Prometheus conventions: counters end in ``_total``, durations are
in seconds. The three timings the OpenTelemetry GenAI conventions name (request
duration, time to first token, time per output token) carry those names
(``gen_ai.server.*`` with dots as underscores), so a dashboard built for vLLM or any
other conforming server reads them; the rest are the project's own (``llmops_``).
"""

from __future__ import annotations

__all__ = ["ServerMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    def __init__(self, deployment: str, info: dict[str, str] | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "llmops_requests",
            "HTTP requests by endpoint, serving arm and status code.",
            ["endpoint", "arm", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "gen_ai_server_request_duration_seconds",  # OpenTelemetry GenAI: gen_ai.server.request.duration
            "Time from request received to last byte of the answer.",
            ["endpoint", "arm"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",  # OpenTelemetry GenAI: gen_ai.server.time_to_first_token
            "Time from request received to the model emitting its first new token.",
            ["arm"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "gen_ai_server_time_per_output_token_seconds",  # OpenTelemetry GenAI: gen_ai.server.time_per_output_token
            "Time per output token after the first (decode speed a client sees).",
            ["arm"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "llmops_request_queue_time_seconds",
            "Time from request received to its first forward pass (waiting for a batch slot).",
            ["arm"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llmops_tokens", "Prompt (in) and completion (out) tokens.", ["arm", "direction"], registry=r
        )
        self.batch_size = Histogram(
            "llmops_batch_size",
            "Requests per forward batch of the dynamic batcher.",
            ["arm"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("llmops_queue_depth", "Requests waiting for a batch.", ["arm"], registry=r)
        self.info = Info("llmops_deployment", "What this server serves.", registry=r)
        self.info.info({"deployment": deployment, **(info or {})})

    def observe_request(
        self,
        endpoint: str,
        arm: str | None,
        status: int,
        seconds: float,
        ttft: float | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        tpot: float | None = None,
        queue: float | None = None,
    ) -> None:
        arm = arm or "none"
        self.requests.labels(endpoint, arm, str(status)).inc()
        if status < 400:
            self.latency.labels(endpoint, arm).observe(seconds)
            if ttft is not None:
                self.ttft.labels(arm).observe(ttft)
            if tpot is not None:
                self.tpot.labels(arm).observe(tpot)
            if queue is not None:
                self.queue_time.labels(arm).observe(queue)
            self.tokens.labels(arm, "in").inc(prompt_tokens)
            self.tokens.labels(arm, "out").inc(completion_tokens)

    def observe_batch(self, arm: str, size: int, depth: int) -> None:
        self.batch_size.labels(arm).observe(size)
        self.queue_depth.labels(arm).set(depth)

    def set_depth(self, arm: str, depth: int) -> None:
        self.queue_depth.labels(arm).set(depth)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
