"""`python -m gateway`: serve the gateway with the process's `HITS_*` settings (uvloop); with
`HITS_GATEWAY_PROCESSES=N` > 1, N processes on one port (gateway/processes.py)."""

from __future__ import annotations

from deploy.startup import configure_logging, settings_or_exit
from gateway.processes import serve, supervise


def main() -> None:
    settings = settings_or_exit()
    if settings.gateway_processes == 1:
        serve(settings)
        return
    configure_logging(settings)
    supervise(settings)


if __name__ == "__main__":
    main()
