"""The Prometheus endpoint, scraped while the daemon works against real Dovecot and aiosmtpd:
the figures move as mail flows."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.daemon import running_daemon, wait_until
from tests.servers import Dovecot, SmtpSink, free_port
from tests.support import intake, make_mail, write_settings


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_figures_move_as_mail_flows(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    imap_config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    with running_daemon(write_settings(tmp_path, imap_config)) as daemon:
        daemon.wait_for_log("push: IMAP IDLE on")
        before = _scrape(port)
        assert before[("intake_connection_up", (("connection", "push"),))] == 1
        assert ("intake_inbound_total", (("outcome", "ticket_created"),)) not in before
        dovecot.append(make_mail(sender="measured@example.net"), folder=folder)
        wait_until(lambda: len(sink.messages) == 2, "the acknowledgement and the notice")

        def moved() -> bool:
            after = _scrape(port)
            return after.get(("intake_outbound_total", (("result", "sent"),)), 0) == 2

        wait_until(moved, "the sent emails counted")
        after = _scrape(port)
    assert after[("intake_inbound_total", (("outcome", "ticket_created"),))] == 1
    assert after[("intake_acknowledgement_wait_seconds_count", ())] == 1
    assert after[("intake_acknowledgement_wait_seconds_sum", ())] < 60
    assert after[("intake_job_last_success_timestamp_seconds", (("job", "fetch"),))] > 0
    assert after[("intake_connection_up", (("connection", "mailbox"),))] == 1
    assert after[("intake_connection_up", (("connection", "outbound"),))] == 1
    assert ("intake_queue", (("queue", "outbound_queued"),)) in after


def test_a_metrics_address_in_use_is_one_clear_line(
    base_config: dict[str, Any], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        base_config["metrics"] = {"listen": f"127.0.0.1:{taken.getsockname()[1]}"}
        result = intake("run", config=write_settings(tmp_path, base_config), check=False)
    assert result.returncode == 1
    assert "metrics.listen 127.0.0.1:" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_metrics_address_is_refused_at_start(
    base_config: dict[str, Any], tmp_path: Path
) -> None:
    base_config["metrics"] = {"listen": "everywhere"}
    result = intake("check", config=write_settings(tmp_path, base_config), check=False)
    assert result.returncode != 0 and "metrics.listen" in result.stderr
    assert "Traceback" not in result.stderr
