"""Threadline benchmark suite: `python -m bench` (see bench/README.md).

Servers run as separate processes pinned to one core; the load generator (wrk) runs on the other.
Every Threadline number is reported next to a hello-world ceiling and a whole-file baseline
measured in the same run, so the ratios mean something on a noisy shared machine.
"""
