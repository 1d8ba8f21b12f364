"""The pieces of scripts/bench.py, one job per module (scripts/bench.py ties them into one run)."""
