"""Benchmarks: the studio measured side by side with the plain way of doing the same work (see README.md)."""
