"""`python -m gateway`: serve the gateway with the process's `HITS_*` settings (uvloop); with
`HITS_GATEWAY_PROCESSES=N` > 1, N processes on one port (gateway/processes.py). The topics are
checked once first (`deploy.startup.warn_of_topic_problems`)."""

from __future__ import annotations

from deploy.startup import configure_logging, settings_or_exit, warn_of_topic_problems
from gateway.processes import serve, supervise


def main() -> None:
    settings = settings_or_exit()
    configure_logging(settings)
    warn_of_topic_problems(settings)
    if settings.gateway_processes == 1:
        serve(settings)
        return
    supervise(settings)


if __name__ == "__main__":
    main()
