"""Settings of each of N gateway processes (the processes themselves: tests/integration)."""

from __future__ import annotations

import pytest

from gateway.processes import process_settings
from schemas.settings import SettingsError, load_settings


def test_process_zero_keeps_the_spool_and_the_others_get_their_own() -> None:
    settings = load_settings({}, spool_dir="/var/spool/hits", gateway_processes=3)
    spools = [process_settings(settings, i).spool_dir for i in range(3)]
    assert spools == ["/var/spool/hits", "/var/spool/hits/process-1", "/var/spool/hits/process-2"]
    assert process_settings(settings, 2).gateway_port == settings.gateway_port


@pytest.mark.parametrize("value", ["0", "-1", "257", "two"])
def test_the_number_of_processes_is_checked(value: str) -> None:
    with pytest.raises(SettingsError, match="HITS_GATEWAY_PROCESSES"):
        load_settings({"HITS_GATEWAY_PROCESSES": value})
