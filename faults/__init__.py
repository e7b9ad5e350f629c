"""The fault suite: real processes, real faults, invariants checked against a client log."""
