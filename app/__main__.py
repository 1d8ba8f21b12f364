"""`python -m app`: the same as `visionserve serve` (its flags included)."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
