"""`python -m pipeline.worker`: run one hitstream worker with the process's `HITS_*` settings."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pipeline.app import create_app
from schemas.settings import SettingsError, load_settings


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level.lower()]
    app.main()


if __name__ == "__main__":
    main()
