"""`leoflow-xcom init`: everything the appliance needs before its services start.

Two stages, so Redis can start in between with the users this job defines:

- prepare (no Redis): validate the DAG policies, generate missing secrets (0600 in a 0700
  directory; an existing secret is kept unless rotated), with LEOFLOW_INIT_TLS=on a private CA
  and a server certificate (init/tls.py), write the Redis ACL file. Any error
  stops here, before Redis or anything else has started.
- apply (Redis up): log in as the admin user (bounded wait), ACL LOAD the file and check it,
  stamp or check the data-layout version, publish the DAG policies.

Compose runs them as two one-shot services (`xcom-init`, then Redis, then `xcom-init-redis`);
`make run` runs prepare, starts its local Redis, then apply; `--stage all` runs both in turn
against a Redis that already runs with the ACL file. Nothing here prints or logs a secret.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from pathlib import Path

from leoflow_xcom.core.policies import DagPolicy
from leoflow_xcom.init import secrets, tls
from leoflow_xcom.init.dag_files import load_policy_files
from leoflow_xcom.settings import InitSettings, RedisSettings
from leoflow_xcom.store import acl, admin
from leoflow_xcom.store.layout import ensure_layout
from leoflow_xcom.store.nodes import describe
from leoflow_xcom.store.registry import PolicyStore

log = logging.getLogger(__name__)

ACL_FILE_NAME = "users.acl"
REPLICATION_CONF_NAME = "replication.conf"
TLS = "tls"  # `--rotate tls`: a new CA and server certificate
ROTATABLE = (*secrets.NAMES, TLS)


class InitError(Exception):
    """The job cannot complete; the message says what is wrong and what to do."""


@dataclasses.dataclass(frozen=True)
class Prepared:
    policies: list[DagPolicy]
    secrets: dict[str, secrets.Secret]
    acl_file: Path
    tls: tls.TlsFiles | None = None


def acl_file_path(settings: InitSettings) -> Path:
    return settings.acl_dir / ACL_FILE_NAME


def prepare(settings: InitSettings, rotate: Collection[str] = ()) -> Prepared:
    unknown = sorted(set(rotate) - set(ROTATABLE))
    if unknown:
        raise InitError(
            f"--rotate {', '.join(unknown)}: no such secret; one of {', '.join(ROTATABLE)}"
        )
    try:
        policies = load_policy_files(settings.dags)
    except ValueError as exc:
        raise InitError(f"LEOFLOW_INIT_DAGS: {exc}") from None
    if TLS in rotate and not settings.tls:
        raise InitError("--rotate tls: TLS is off; set LEOFLOW_INIT_TLS=on")

    try:
        secrets.ensure_dir(settings.secrets_dir, 0o700)
        # The ACL directory holds password hashes and the PING-only password; in Compose Redis
        # reads it as another uid, so it is world-readable there unless LEOFLOW_INIT_ACL_PRIVATE.
        acl_dir_mode, acl_file_mode = settings.acl_modes
        secrets.ensure_dir(settings.acl_dir, acl_dir_mode)
        made = {
            name: secrets.ensure_secret(
                settings.acl_dir if name in secrets.ACL_DIR_NAMES else settings.secrets_dir,
                name,
                rotate=name in rotate,
                mode=acl_file_mode if name in secrets.ACL_DIR_NAMES else 0o600,
            )
            for name in secrets.NAMES
        }
        tls_files = (
            tls.ensure_tls(
                settings.secrets_dir, tls.parse_hosts(settings.tls_hosts), rotate=TLS in rotate
            )
            if settings.tls
            else None
        )
    except secrets.SecretError as exc:
        raise InitError(str(exc)) from None
    except OSError as exc:
        raise InitError(f"cannot write secrets: {exc.filename}: {exc.strerror}") from None

    users = acl.acl_users(
        service=made[secrets.REDIS_XCOM_PASSWORD].value,
        proxy=made[secrets.REDIS_UI_PASSWORD].value,
        admin=made[secrets.REDIS_ADMIN_PASSWORD].value,
        healthcheck=made[secrets.HEALTHCHECK_PASSWORD].value,
        replication=made[secrets.REPLICATION_PASSWORD].value,
        sentinel=made[secrets.SENTINEL_PASSWORD].value,
    )
    acl_file = acl_file_path(settings)
    secrets.write_public_file(acl_file, acl.acl_file_text(users), mode=acl_file_mode)
    # For nodes that replicate (Redis Cluster, Sentinel): `--include` this file.
    secrets.write_public_file(
        settings.acl_dir / REPLICATION_CONF_NAME,
        acl.replication_conf_text(made[secrets.REPLICATION_PASSWORD].value),
        mode=acl_file_mode,
    )

    for secret in made.values():
        if secret.created:
            log.info("generated secret %s", secret.path)
        elif secret.previous is not None:
            log.info("rotated secret %s", secret.path)
    if tls_files is not None:
        if tls_files.ca_created:
            log.info("generated TLS CA %s", tls_files.ca_cert)
        if tls_files.server_issued:
            log.info(
                "issued TLS server certificate %s for %s", tls_files.server_cert, settings.tls_hosts
            )
    log.info(
        "validated %d DAG policies; wrote %d Redis ACL users to %s",
        len(policies),
        len(users),
        acl_file,
    )
    return Prepared(policies, made, acl_file, tls_files)


def apply(settings: InitSettings, redis_settings: RedisSettings, prepared: Prepared) -> None:
    admin_secret = prepared.secrets[secrets.REDIS_ADMIN_PASSWORD]
    candidates = [admin_secret.value]
    if admin_secret.previous is not None:
        candidates.append(admin_secret.previous)
    wait = settings.redis_wait_seconds
    try:
        client = admin.wait_for_admin(redis_settings, candidates, wait)
        # ACL users are per node: every primary and replica gets the file and is checked.
        found = admin.data_nodes(client, redis_settings, candidates, wait)
        admin.prepare_nodes(
            redis_settings,
            found,
            candidates,
            prepared.secrets[secrets.REPLICATION_PASSWORD].value,
            wait,
        )
        sentinels = admin.configure_sentinels(
            redis_settings, prepared.secrets[secrets.SENTINEL_PASSWORD].value
        )
    except admin.AdminError as exc:
        raise InitError(str(exc)) from None
    log.info(
        "ACL users loaded and checked on %d Redis nodes: %s%s",
        len(found),
        describe(found),
        f"; {sentinels} Sentinels log in as {acl.SENTINEL_USER}" if sentinels else "",
    )
    # A layout this version does not know raises LayoutMismatchError (an XComError): the CLI
    # prints its message and exits non-zero, so nothing else starts.
    ensure_layout(client)
    revision = PolicyStore(client).publish(prepared.policies)
    client.close()
    log.info(
        "Redis ready: ACL users loaded, layout checked, %d DAG policies applied (revision %d)",
        len(prepared.policies),
        revision,
    )


def load_existing(settings: InitSettings) -> Prepared:
    """For `--stage apply` alone: the policies and secrets a previous prepare left."""
    try:
        policies = load_policy_files(settings.dags)
    except ValueError as exc:
        raise InitError(f"LEOFLOW_INIT_DAGS: {exc}") from None
    made: dict[str, secrets.Secret] = {}
    for name in secrets.NAMES:
        directory = settings.acl_dir if name in secrets.ACL_DIR_NAMES else settings.secrets_dir
        if not (directory / name).exists():
            raise InitError(f"{directory / name} missing: run `leoflow-xcom init` (prepare) first")
        try:
            made[name] = secrets.ensure_secret(
                directory,
                name,
                mode=settings.acl_modes[1] if directory == settings.acl_dir else 0o600,
            )
        except secrets.SecretError as exc:
            raise InitError(str(exc)) from None
    return Prepared(policies, made, acl_file_path(settings))
