"""`python -m tests.proxy.airflow.prefetch` (run by `make test` before pytest): build the
Airflow client virtualenvs and download Airflow's wheels into `.cache/airflow` up front, with
no per-test timeout on a slow network. A no-op when everything is cached already."""

from __future__ import annotations

import time

from tests.proxy.airflow import cache, spec


def main() -> None:
    started = time.monotonic()
    for generation in cache.CLIENTS:
        cache.client_python(generation)
    spec.v1(), spec.v2(), spec.login()
    print(f"airflow artefacts ready in {cache.CACHE} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
