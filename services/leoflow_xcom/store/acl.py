"""Redis ACL users of the appliance, in one place: who may run which command on which keys.

Every list below is what the code in this package actually sends, including the commands the
Lua scripts in `store/scripts.py` call (Redis checks those against the caller's ACL too):

- `xcom` (the gRPC service): reads and writes `xcom:*` keys only.
- `xcom-ui` (the HTTP proxy): `%R~xcom:*`, read-only keys, and only read commands; it may load
  scripts and run them with EVALSHA_RO only (the `no-writes` listing script).
- `xcom-admin` (`leoflow-xcom init`): the operator's user; stamps the layout, publishes policies,
  loads the ACL file.
- `healthcheck`: PING and CLUSTER INFO only, no keys, for the Redis containers' healthchecks.
- `xcom-replication`: what a replica sends its primary (PSYNC, REPLCONF, PING), for the
  `masteruser`/`masterauth` of every node of a Redis Cluster or Sentinel group.
- `xcom-sentinel`: what Sentinel sends the nodes it watches and fails over (Redis's documented
  minimal Sentinel user), for `sentinel auth-user`/`auth-pass`.
- `default`: disabled and without any password, so nobody can log in as it (its permissions
  stay full because Redis replays the AOF as this user; see `default_user_rules`).

Passwords are turned into SHA-256 hashes (`#<hex>`), so the same argument lists serve both
`ACL SETUSER` and the ACL file that Redis loads at start, and the ACL file never holds a
plaintext password.
"""

from __future__ import annotations

import hashlib
from typing import Final

import redis
import redis.exceptions

from leoflow_xcom.core import keys
from leoflow_xcom.settings import SettingsError
from leoflow_xcom.store.connection import StoreClient, translated

SERVICE_USER: Final = "xcom"
PROXY_USER: Final = "xcom-ui"
ADMIN_USER: Final = "xcom-admin"
HEALTHCHECK_USER: Final = "healthcheck"
REPLICATION_USER: Final = "xcom-replication"
SENTINEL_USER: Final = "xcom-sentinel"

# Commands of the listing and run-summary scripts (`scripts.LIST`, `scripts.RUN_SUMMARY`) and
# of the readers (reader.py, runs.page(), registry.load(), layout.read_layout()); STRLEN and
# GETRANGE read the head of a value for the XCom browser (reader.fetch_head).
READ_COMMANDS: Final = (
    "get",
    "mget",
    "exists",
    "time",
    "zrangebylex",
    "zlexcount",
    "zcount",
    "zrangebyscore",
    "zscore",
    "hget",
    "hmget",
    "hgetall",
    "strlen",
    "getrange",
    "hkeys",
)
# Running the scripts: EVALSHA (push) or EVALSHA_RO (the `no-writes` listing), SCRIPT LOAD when
# Redis lost its script cache, EVAL as redis-py's fallback for the push script.
SCRIPT_COMMANDS: Final = ("evalsha", "eval", "evalsha_ro", "script|load")
# The proxy runs only the listing script, with EVALSHA_RO: plain EVALSHA declares its keys as
# written, which a read-only key pattern refuses.
READ_SCRIPT_COMMANDS: Final = ("evalsha_ro", "script|load")
# Pipelines with transaction=True (policies load/publish) and the WATCH-based clear.
TRANSACTION_COMMANDS: Final = ("multi", "exec", "discard", "watch", "unwatch")
# Connection upkeep. Not CLIENT SETINFO, which redis-py sends on connect and ignores when
# refused: Redis 7.0 does not know it, so naming it would make the ACL file fail to load there.
# INFO (memory, persistence, keyspace: no key or value) feeds the metrics and the memory warning.
CONNECTION_COMMANDS: Final = ("ping", "info")
# LEOFLOW_REDIS_MIN_REPLICA_ACKS: WAIT after each write, on the same connection (no keys).
REPLICA_ACK_COMMANDS: Final = ("wait",)
# What redis-py's cluster client sends besides the data commands: CLUSTER SLOTS to learn the
# topology (at start and after every MOVED), COMMAND for its key-position table (and COMMAND
# GETKEYS for commands with movable keys), READONLY/READWRITE on connections to replicas, ASKING
# during a slot migration; CLUSTER SHARDS is its newer topology call. Topology only, no keys or
# values; on a standalone node these commands just answer an error.
CLUSTER_CLIENT_COMMANDS: Final = (
    "cluster|slots",
    "cluster|shards",
    "command",
    "readonly",
    "readwrite",
    "asking",
)
# A replica's link to its primary (and Redis's own documented minimum for `masteruser`).
REPLICATION_COMMANDS: Final = ("psync", "replconf", "ping")
# Sentinel's connections to the nodes it monitors: Redis's documented minimal Sentinel user.
# Failover is MULTI, SLAVEOF (REPLICAOF), CONFIG REWRITE, CLIENT KILL, EXEC; it publishes and
# subscribes on `__sentinel__:hello`.
SENTINEL_COMMANDS: Final = (
    "multi",
    "slaveof",
    "replicaof",
    "ping",
    "exec",
    "subscribe",
    "config|rewrite",
    "role",
    "publish",
    "info",
    "client|setname",
    "client|kill",
    "script|kill",
)
SENTINEL_CHANNEL: Final = "__sentinel__:hello"
# Writes: the push script (SET PX, ZADD, HSET, HSETNX, HINCRBY, ZRANGEBYSCORE, ZREM,
# ZREMRANGEBYRANK, HDEL, PTTL, PEXPIRE), the run index prune (ZREMRANGEBYSCORE), the clear
# script (DEL, ZREM, HDEL, HINCRBY), the layout stamp and migration (SET NX), policies (HSET,
# HDEL, INCRBY). redis-py sends INCR as INCRBY.
WRITE_COMMANDS: Final = (
    "set",
    "del",
    "zadd",
    "zrem",
    "zremrangebyscore",
    "hset",
    "hsetnx",
    "hdel",
    "hincrby",
    "zremrangebyrank",
    "incrby",
    "pttl",
    "pexpire",
)


def password_hash(password: str) -> str:
    """The `#<sha256 hex>` form Redis accepts in ACL SETUSER and in ACL files."""
    return "#" + hashlib.sha256(password.encode("utf-8")).hexdigest()


def _allow(*groups: tuple[str, ...]) -> list[str]:
    return [f"+{command}" for group in groups for command in group]


def service_user_rules(password: str) -> list[str]:
    """ACL SETUSER arguments (after the user name) for the gRPC service user."""
    return [
        "reset",
        "on",
        password_hash(password),
        f"~{keys.KEY_PATTERN}",
        "resetchannels",
        "-@all",
        *_allow(
            READ_COMMANDS,
            WRITE_COMMANDS,
            SCRIPT_COMMANDS,
            TRANSACTION_COMMANDS,
            CONNECTION_COMMANDS,
            REPLICA_ACK_COMMANDS,
            CLUSTER_CLIENT_COMMANDS,
        ),
    ]


def proxy_user_rules(password: str) -> list[str]:
    """ACL SETUSER arguments for the read-only UI proxy user."""
    return [
        "reset",
        "on",
        password_hash(password),
        f"%R~{keys.KEY_PATTERN}",
        "resetchannels",
        "-@all",
        *_allow(
            READ_COMMANDS,
            READ_SCRIPT_COMMANDS,
            ("multi", "exec", "discard"),
            CONNECTION_COMMANDS,
            CLUSTER_CLIENT_COMMANDS,
        ),
    ]


def admin_user_rules(password: str) -> list[str]:
    return ["reset", "on", password_hash(password), "~*", "&*", "+@all"]


def healthcheck_user_rules(password: str) -> list[str]:
    # CLUSTER INFO: a cluster node's healthcheck waits for `cluster_state:ok` (state only).
    return [
        "reset",
        "on",
        password_hash(password),
        "resetchannels",
        "-@all",
        "+ping",
        "+cluster|info",
    ]


def replication_user_rules(password: str) -> list[str]:
    return [
        "reset",
        "on",
        password_hash(password),
        "resetchannels",
        "-@all",
        *_allow(REPLICATION_COMMANDS),
    ]


def sentinel_user_rules(password: str) -> list[str]:
    return [
        "reset",
        "on",
        password_hash(password),
        "resetchannels",
        f"&{SENTINEL_CHANNEL}",
        "-@all",
        *_allow(SENTINEL_COMMANDS),
    ]


def default_user_rules() -> list[str]:
    # Off, with no password and no `nopass`: nobody can log in as it (and protected mode stays
    # out of the way). Its permissions stay full on purpose: Redis replays the AOF as the
    # default user and re-checks each queued command's ACL at EXEC, so a default user without
    # permissions silently drops every MULTI/EXEC from the AOF on restart - including every
    # push, since Redis 7 writes a script's effects to the AOF as MULTI/EXEC. (Seen on Redis
    # 7.0.15 and valkey; tests/store/test_acl.py kills a server to prove it stays fixed.)
    return ["reset", "off", "resetpass", "~*", "&*", "+@all"]


def acl_users(
    *,
    service: str,
    proxy: str,
    admin: str,
    healthcheck: str,
    replication: str,
    sentinel: str,
) -> dict[str, list[str]]:
    """Every user of the appliance with its rules, given each one's password. The same file
    goes to every node (primaries, replicas, a Sentinel group's nodes): a replica promoted by a
    failover must already know the service's users."""
    return {
        "default": default_user_rules(),
        ADMIN_USER: admin_user_rules(admin),
        SERVICE_USER: service_user_rules(service),
        PROXY_USER: proxy_user_rules(proxy),
        HEALTHCHECK_USER: healthcheck_user_rules(healthcheck),
        REPLICATION_USER: replication_user_rules(replication),
        SENTINEL_USER: sentinel_user_rules(sentinel),
    }


# Every user `leoflow-xcom init` checks on every node after ACL LOAD.
APPLIANCE_USERS: Final = (
    ADMIN_USER,
    SERVICE_USER,
    PROXY_USER,
    HEALTHCHECK_USER,
    REPLICATION_USER,
    SENTINEL_USER,
)


def replication_conf_text(password: str) -> str:
    """A config fragment (`--include`) that makes a node authenticate to its primary as the
    replication user: every node needs it, since a failover turns a primary into a replica."""
    return f"masteruser {REPLICATION_USER}\nmasterauth {password}\n"


def acl_file_text(users: dict[str, list[str]]) -> str:
    """An ACL file (`aclfile`) with these users, one `user NAME RULES...` line each."""
    return "".join(f"user {name} {' '.join(rules)}\n" for name, rules in users.items())


# Never exists: deleting it is a harmless write, so it tells whether a user may write.
_WRITE_PROBE_KEY: Final = keys.KEY_PATTERN.removesuffix("*") + "proxy:write-probe"


def refuse_writable(client: StoreClient) -> None:
    """Fail unless Redis refuses this connection a write (the proxy must be read-only)."""
    with translated():
        try:
            client.delete(_WRITE_PROBE_KEY)
        except redis.exceptions.NoPermissionError:
            return
    raise SettingsError(
        f"the proxy's Redis user may write; run it as the read-only ACL user {PROXY_USER!r} "
        "(LEOFLOW_UI_REDIS_USERNAME, LEOFLOW_UI_REDIS_PASSWORD_FILE)"
    )
