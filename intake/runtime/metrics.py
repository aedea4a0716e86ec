"""The daemon's Prometheus endpoint (the official prometheus-client), off unless
`[metrics] listen` names an address.

Each daemon serves its own figures (what it processed, sent and how its jobs fare) and the
queue figures, which come from the database and so are the same whichever daemon is asked:
sum the counters across daemons, take any one daemon's queue gauges.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from intake.runtime.health import QueueFigures

# Arrival to acknowledgement: push answers in about a second, polling in up to a minute.
WAIT_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inbound = Counter(
            "intake_inbound",
            "Inbound messages processed, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.outbound = Counter(
            "intake_outbound",
            "Outbound emails, by what became of them",
            ["result"],
            registry=self.registry,
        )
        self.waits = Histogram(
            "intake_acknowledgement_wait_seconds",
            "From a report's arrival in the mailbox to its acknowledgement's sending",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.queue = Gauge(
            "intake_queue",
            "Work waiting in the database (all daemons)",
            ["queue"],
            registry=self.registry,
        )
        self.oldest = Gauge(
            "intake_oldest_waiting_seconds",
            "Age of the oldest message stored and not yet processed (0: none)",
            registry=self.registry,
        )
        self.job_failures = Counter(
            "intake_job_failures",
            "Failed runs of each daemon job",
            ["job"],
            registry=self.registry,
        )
        self.job_success = Gauge(
            "intake_job_last_success_timestamp_seconds",
            "When each daemon job last succeeded (Unix time)",
            ["job"],
            registry=self.registry,
        )
        self.connection = Gauge(
            "intake_connection_up",
            "1 while a connection works: mailbox (fetch), push (IDLE or watch), outbound (SMTP)",
            ["connection"],
            registry=self.registry,
        )

    def serve(self, address: tuple[str, int]) -> None:
        """Serve /metrics from a thread of the client library's own."""
        host, port = address
        start_http_server(port, addr=host, registry=self.registry)

    def queues(self, figures: QueueFigures) -> None:
        self.queue.labels("inbound_waiting").set(figures.inbound_waiting)
        self.queue.labels("inbound_parked").set(figures.inbound_parked)
        self.queue.labels("outbound_queued").set(figures.outbound_queued)
        self.queue.labels("outbound_failed").set(figures.outbound_failed)
        oldest = figures.oldest_waiting
        self.oldest.set(oldest.total_seconds() if oldest else 0)
