"""tagloop's tooling: simulation, benchmarks, the demo, and the process harness they and the tests share."""
