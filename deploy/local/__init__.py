"""The local stack: a Kafka broker from Maven jars, chDB behind ClickHouse's HTTP interface, and
the helpers that start the worker and gateway for `make run`, the tests, the chaos runs and the
benches. Nothing here runs in production: the runtime (`gateway/`, `pipeline/`, `results/`,
`hitstream/` and the rest of `deploy/`) may not import it (tests/unit/test_architecture.py).
"""
