"""Who may do what. Pure decisions from verified claims and the DAG's compiled policy.

- push: only as yourself (the token's dag, run, task and map index);
- fetch: only inside your own DAG run, from your own task or a task you declared in depends_on;
- list: your own run (task tokens) or any run (control plane);
- clear: control plane only.
"""

from __future__ import annotations

from leoflow_xcom.core.errors import TaskNotDeclaredError, XComForbiddenError
from leoflow_xcom.core.model import Claims
from leoflow_xcom.core.policies import CompiledDag, DagPolicy


def require_task(claims: Claims, action: str) -> None:
    """Pushing and fetching are done by task instances, never with a control-plane token."""
    if claims.is_control_plane:
        raise XComForbiddenError(
            f"a control-plane token cannot {action}: XComs are pushed and fetched by tasks, "
            f"with the token of the task instance."
        )


def check_push_identity(
    claims: Claims,
    dag_id: str | None,
    run_id: str | None,
    task_id: str | None,
    map_index: int | None,
) -> None:
    """Ids sent in a push body, when present, must be the token's own."""
    require_task(claims, "push")
    asked = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    own = {
        "dag_id": claims.dag_id,
        "run_id": claims.run_id,
        "task_id": claims.task_id,
        "map_index": claims.map_index,
    }
    for name, value in asked.items():
        if value is not None and value != own[name]:
            raise XComForbiddenError(
                f"a task may push only as itself: the request names {name}={value!r} but the "
                f"token is for {name}={own[name]!r}.",
                {"field": name},
            )


def task_of(claims: Claims, dag: CompiledDag) -> frozenset[str]:
    """The caller's declared dependencies; fails if its task is not part of the DAG."""
    deps = dag.dependencies.get(claims.task_id)
    if deps is None:
        raise TaskNotDeclaredError.for_task(claims.dag_id, claims.task_id)
    return deps


def check_same_run(claims: Claims, dag_id: str | None, run_id: str | None, action: str) -> None:
    if claims.is_control_plane:
        return
    if dag_id is not None and dag_id != claims.dag_id:
        raise XComForbiddenError(
            f"a task may {action} XComs of its own DAG only: asked for DAG {dag_id!r}, the token "
            f"is for DAG {claims.dag_id!r}.",
            {"field": "dag_id"},
        )
    if run_id is not None and run_id != claims.run_id:
        raise XComForbiddenError(
            f"a task may {action} XComs of its own DAG run only: asked for run {run_id!r}, the "
            f"token is for run {claims.run_id!r}.",
            {"field": "run_id"},
        )


def check_fetch(claims: Claims, dag: CompiledDag, source_task_id: str) -> None:
    require_task(claims, "fetch")
    deps = task_of(claims, dag)
    if source_task_id != claims.task_id and source_task_id not in deps:
        raise XComForbiddenError(
            f"task {claims.task_id!r} may read XComs only from tasks it declares in depends_on "
            f"(declared: {sorted(deps)}); {source_task_id!r} is not one of them. Add it to "
            f"depends_on in the DAG's policy.",
            {"task_id": source_task_id},
        )


def readers_of(policy: DagPolicy, task_id: str) -> list[str]:
    """The other tasks `check_fetch` lets read `task_id`'s XComs: those declaring it in
    depends_on (a task may always read its own), in the policy's order."""
    return [t.task_id for t in policy.tasks if task_id in t.depends_on]


def check_clear(claims: Claims) -> None:
    if not claims.is_control_plane:
        raise XComForbiddenError(
            "only the control plane may clear XComs; mint a token with `leoflow-xcom token "
            "--control-plane`."
        )
