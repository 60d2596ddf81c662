"""The one way hitstream opens a ClickHouse client: HTTP(S) to a server, or chdb:// in-process.

An https:// URL turns TLS on; `HITS_CLICKHOUSE_VERIFY` and `HITS_CLICKHOUSE_CA_FILE` say how the
server's certificate is checked. User and password go in HTTP headers, never in a URL or a log.
On a cluster every client sends the settings of `deploy.clickhouse_ddl.session_settings`.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from deploy.clickhouse_ddl import session_settings
from schemas.settings import Settings


def connect(settings: Settings, database: str | None = None) -> Client:
    database = database or settings.clickhouse_database
    url = settings.clickhouse_url
    if url.startswith("chdb://"):
        return clickhouse_connect.get_client(dsn=url, database=database)
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    tls: dict[str, Any] = {
        "verify": settings.clickhouse_verify,
        "ca_cert": settings.clickhouse_ca_file or None,
    }
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
        settings=session_settings(settings),
        compress=compression(settings.clickhouse_compression, parts.hostname or "127.0.0.1"),
        **(tls if secure else {}),
    )


def compression(setting: str, host: str) -> str | bool:
    """clickhouse-connect's `compress`: the setting, with `auto` off for a loopback host."""
    if setting == "auto":
        setting = "none" if _loopback(host) else "lz4"
    return False if setting == "none" else setting


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
