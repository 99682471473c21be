"""Reading DAG policy files: one file, or every *.json of a directory, all validated first."""

from __future__ import annotations

from pathlib import Path

from leoflow_xcom.core.policies import DagPolicy, PolicyError, parse_policy


class PolicyFileError(ValueError):
    """A policy file or directory that cannot be used; the message names file, JSON path and
    reason."""


def load_policy_files(path: Path) -> list[DagPolicy]:
    """Read and validate a policy file or every *.json in a directory (sorted)."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise PolicyFileError(f"{path}: no *.json policy files")
    elif path.is_file():
        files = [path]
    else:
        raise PolicyFileError(f"{path}: no such file or directory")
    policies: list[DagPolicy] = []
    seen: dict[str, Path] = {}
    for file in files:
        try:
            policy = parse_policy(file.read_bytes(), str(file))
        except PolicyError as exc:
            raise PolicyFileError(f"invalid DAG policy: {exc}") from None
        except OSError as exc:
            raise PolicyFileError(f"{file}: cannot read: {exc.strerror}") from None
        if policy.dag_id in seen:
            raise PolicyFileError(
                f"invalid DAG policy: {file}: $.dag_id: {policy.dag_id!r} is also declared in "
                f"{seen[policy.dag_id]}"
            )
        seen[policy.dag_id] = file
        policies.append(policy)
    return policies
