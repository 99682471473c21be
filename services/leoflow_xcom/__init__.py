"""Leoflow XCom: small typed payloads between tasks, in Redis, over gRPC."""

__version__ = "0.1.0"
