"""The worker: Faust agents that validate raw hits, dedup and derive, and sink into ClickHouse.

Each stage is a pure function (`validate`, `retries`, `derive`, `progress`) wired to topics by a
short agent in `app`. The pure parts never do I/O; the agents never hold logic.
"""
