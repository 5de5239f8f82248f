"""The benchmark harness behind bench/run.py: servers, load, measurements and the report."""
