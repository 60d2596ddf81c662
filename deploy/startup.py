"""Process start-up shared by the gateway and the worker: settings or exit 2, then the logs.

Logs go to stderr, one record per line: with `HITS_LOG_FORMAT=json` (the default) one JSON
object with `time`, `level`, `logger`, `message` and, where the code passes them with `extra=`,
`topic`, `partition`, `offset`, `hit_id` (python-json-logger); `text` is for a terminal.
`HITS_LOG_LEVEL=DEBUG` applies to hitstream's own loggers only (see `QUIET_LIBRARIES`).
Every line is redacted on its way out: the values of the secret settings and anything shaped
like an email address become `***`, whatever the code above tried to log.

Both processes then check the topics once (`warn_of_topic_problems`): a co-partitioned topic
whose partition count is not `HITS_PARTITIONS`, a missing topic or too few replicas is logged as
a warning by `deploy.topics`; the start goes on either way.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import re
import sys
from typing import Any

import orjson
from pythonjsonlogger.json import JsonFormatter

from deploy.topics import check_topics
from schemas.settings import MASK, Settings, SettingsError, load_settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Their DEBUG records print whole Kafka messages (raw hits: Octeth API keys and emails, base64
# encoded in the envelope), so they stay at INFO or above even with HITS_LOG_LEVEL=DEBUG.
QUIET_LIBRARIES = ("aiokafka", "faust", "mode", "kafka")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
TOPIC_CHECK_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)


def settings_or_exit() -> Settings:
    """The process's settings; on a bad `HITS_*` variable print every problem and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


class RedactingFormatter(logging.Formatter):
    """Formats with `inner`, then masks secret values and email addresses in the line."""

    def __init__(self, inner: logging.Formatter, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.inner = inner
        # A secret may appear raw (text) or JSON-escaped (json): mask both spellings.
        spellings = {s for secret in secrets for s in (secret, orjson.dumps(secret)[1:-1].decode())}
        self.secrets = sorted(spellings, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        for secret in self.secrets:
            line = line.replace(secret, MASK)
        return EMAIL.sub(MASK, line)


def formatter(settings: Settings) -> logging.Formatter:
    inner: logging.Formatter
    if settings.log_format == "json":
        inner = JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    else:
        inner = logging.Formatter(TEXT_FORMAT)
    return RedactingFormatter(inner, settings.secrets())


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` document: one stderr handler with our formatter.

    The worker hands it to Faust (`logging_config`), which applies it when the worker starts.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"hitstream": {"()": formatter, "settings": settings}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "hitstream",
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            name: {"level": "INFO" if settings.log_level == "DEBUG" else settings.log_level}
            for name in QUIET_LIBRARIES
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)  # warnings become log records too, not bare stderr text


def warn_of_topic_problems(
    settings: Settings, timeout_s: float = TOPIC_CHECK_TIMEOUT_S
) -> list[str]:
    """The start-up check of the gateway and the worker: each problem with the topics, logged as
    a warning (`deploy.topics.check_topics`) and returned. It never stops a start: when Kafka
    does not answer within `timeout_s` that is logged, and the process starts as it would."""
    try:
        return asyncio.run(asyncio.wait_for(check_topics(settings), timeout_s))
    except Exception as exc:  # Kafka away or slow: the process itself waits for it
        log.warning("topic check skipped: Kafka did not answer (%s)", exc)
        return []
