"""Outcomes: the domain shared by the collector, the aggregator and the dashboard."""
