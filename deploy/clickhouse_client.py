"""The one way hitstream opens a ClickHouse client: HTTP(S) to a server, or chdb:// in-process."""

from __future__ import annotations

from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from schemas.settings import Settings


def connect(settings: Settings, database: str | None = None) -> Client:
    database = database or settings.clickhouse_database
    url = settings.clickhouse_url
    if url.startswith("chdb://"):
        return clickhouse_connect.get_client(dsn=url, database=database)
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    return clickhouse_connect.get_client(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8443 if secure else 8123),
        secure=secure,
        username=settings.clickhouse_user,
        password=settings.clickhouse_password,
        database=database,
        connect_timeout=5,
        send_receive_timeout=60,
        autogenerate_session_id=False,
    )
