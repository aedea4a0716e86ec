"""One module per kind of inbound mail; each decides and acts for its kind."""

from __future__ import annotations

from collections.abc import Mapping

from handlers.base import Handler
from handlers.bounce import handle_bounce
from handlers.machine import OUTCOMES, handle_machine_mail
from handlers.report import handle_report
from intake.classify import Kind

HANDLERS: Mapping[str, Handler] = {
    **{kind: handle_machine_mail for kind in OUTCOMES},
    Kind.BOUNCE: handle_bounce,
    Kind.REPORT: handle_report,
}
