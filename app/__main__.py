"""`python -m app`: run gunicorn with uvicorn workers, configured from the settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONF = Path(__file__).with_name("gunicorn_conf.py")


def main() -> None:
    # glibc's default of 8 arenas per core lets a threaded worker's memory creep up; 2 keeps it flat.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    args = [sys.executable, "-m", "gunicorn", "-c", str(CONF), "app.main:app_from_environment()"]
    os.execv(sys.executable, args)


if __name__ == "__main__":
    main()
