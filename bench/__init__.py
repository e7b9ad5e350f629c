"""Benchmarks: a data generator at a chosen scale and `make bench`, which measures the system."""
