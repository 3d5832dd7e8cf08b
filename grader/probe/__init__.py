"""Probes, from the rubric to the evidence: ``spec`` (what a check asks: origin, action, key;
built once per check by its parameters' ``probes()``), ``script`` (the shell script of an
origin's probes and the facts read back from it) and ``runner`` (probe containers and execs on
the daemon, always cleaned up). The evaluators read a result with ``ProbeSpec.result_in``."""
