"""Locust scenarios against the XCom service (`make loadtest`). See loadtest/locustfile.py."""
