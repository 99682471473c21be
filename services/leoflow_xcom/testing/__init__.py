"""Development harness: real Redis processes and friends for tests, benchmarks and load tests."""
