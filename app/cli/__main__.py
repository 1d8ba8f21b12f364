"""`python -m app.cli`: the same as the `visionserve` console script."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
