"""Every error reason the service can send is named in the proto's header comment and in the
README's error table, the two places a client author reads."""

from __future__ import annotations

import pytest

from leoflow_xcom.core import errors
from leoflow_xcom.testing.paths import ROOT

PROTO = ROOT / "services/proto/leoflow/xcom/v1/xcom.proto"
REASONS = sorted(
    cls.reason
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.XComError) and cls is not errors.XComError
)


def _proto_header() -> str:
    return PROTO.read_text().split("syntax =", 1)[0]


@pytest.mark.parametrize("reason", REASONS)
def test_the_proto_header_names_every_reason(reason: str) -> None:
    assert reason in _proto_header()


@pytest.mark.parametrize("reason", REASONS)
def test_the_readme_error_table_names_every_reason(reason: str) -> None:
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("|")]
    assert any(f"`{reason}`" in row for row in rows)
