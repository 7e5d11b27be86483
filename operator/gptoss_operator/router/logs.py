"""Structured logs: one JSON object per line, with whatever ``extra=`` fields a call passes.

No request or response bodies are ever logged, and nothing that could hold a key: the access
log carries ids, names, statuses and timings only.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD:
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup(level: str = "info", access_log: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("gptoss_operator")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # uvicorn's own messages (startup, protocol errors, anything an app lets escape) go through
    # the same JSON formatter: no plain-text line or bare traceback on stderr.
    server = logging.getLogger("uvicorn")
    server.handlers[:] = [handler]
    server.setLevel(level.upper())
    server.propagate = False
    logging.getLogger("gptoss_operator.router.access").setLevel(
        logging.INFO if access_log else logging.WARNING
    )
