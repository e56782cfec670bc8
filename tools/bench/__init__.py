"""Benchmarks behind ``tagloop bench``: each measures tagloop and a baseline in the same run."""
