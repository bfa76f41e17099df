"""Benchmarks of the ingestor: a generator of large, realistic (invented) data packages and timings."""
