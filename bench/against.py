"""This tree against a git revision, in the same run: `python -m bench --against REV`.

A figure from another day says little on a shared machine (CPU per call drifts by 2x with the
load), so both versions are measured here, now, in alternating rounds, and each round keeps the
ratio new/old; the median ratio over the rounds and its spread are the verdict.

Which parts come from which tree. Each side is that tree's OWN `python -m bench --quick --only
... --json F --out D`, an interface every revision's bench has, run with cwd = the tree and
PYTHONPATH=<tree>/services:<tree>, so that tree's code wins over the editable install of the
shared virtualenv (checked once per side: `leoflow_xcom.__file__` and `bench.__file__` must lie
in the tree). From the tree under test: the service and its gRPC server (bench/server.py, the
product server plus the bench-only echo), the SDK the clients call, the protobuf stubs, the
harness (Redis launcher, policy publishing, token minting, client processes, the measuring loop)
and compose/redis/redis.conf and config/dags. Shared: the virtualenv's Python and third-party
packages (grpcio, protobuf runtime, redis-py), the Redis binary, the machine. This driver starts
no measured process itself; it checks the revision out, alternates the sides, compares.

Why not this tree's harness with the old tree's `leoflow_xcom`: the workload imports SDK
internals (the session transport, the operation table) and `leoflow_xcom.testing`, which older
revisions lack, and the Redis key layout moved (each tree must publish its own policies to its
own Redis), so a mixed side would measure neither version.

The revision is checked out with `git worktree add --detach` under build/against/ (ignored),
reused while it stays clean at the same commit; other checkouts there are removed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import report
from leoflow_xcom.testing.paths import ROOT

CHECKOUTS = ROOT / "build" / "against"
# What an SDK refactor can move: the SDK over both transports (sync and asyncio clients) and,
# as the floors under them, the echo of the same messages with nothing of ours behind it
# (echo-sdk-session-push: the SDK's session machinery against the echo).
SCENARIOS = (
    "echo-unary-push",
    "echo-session-push",
    "echo-sdk-session-push",
    "sdk-push-unary",
    "sdk-push-session",
    "sdk-push-aio",
    "echo-unary-fetch",
    "echo-session-fetch",
    "sdk-fetch-unary",
    "sdk-fetch-session",
    "sdk-fetch-aio",
)
# Every revision's bench: 1 client for the latency (1 s), then 8 clients (0.7 s each).
QUICK = ("--quick",)
STUBS = Path("services/leoflow_xcom/_proto/xcom_pb2.py")
SIDE_TIMEOUT = 900
# The band around 1.0 within which a median ratio counts as noise is measured, not assumed:
# half the larger side's own round-to-round spread (the same code against itself: a ratio that
# far from 1.0 is what either side does to itself between rounds). The floor only matters when
# the rounds are too few to show their spread (one round shows none): in the first full
# comparison (docs/performance.md) the steadiest row, a 1-client echo p50, still strayed ±6%
# between rounds, so 5% is below anything a quick run resolves here.
MIN_BAND = 0.05


class AgainstError(Exception):
    """The comparison cannot be made (an unknown revision, a side that failed)."""


@dataclasses.dataclass(frozen=True)
class Side:
    name: str  # "old" or "new"
    label: str  # what the table calls it
    tree: Path


@dataclasses.dataclass(frozen=True)
class Metric:
    field: str  # a Series field in the bench's JSON
    unit: str
    higher_is_better: bool


P50 = Metric("p50", "p50 ms", False)
THROUGHPUT = Metric("throughput", "calls/s", True)
SERVICE_CPU = Metric("service_cpu_us", "svc µs/call", False)
# The SDK's own cost: one client process's CPU per call (the measuring loop is the same in both).
CLIENT_CPU = Metric("client_cpu_us", "cli µs/call", False)


@dataclasses.dataclass(frozen=True)
class Row:
    scenario: str
    clients: int
    metric: str
    unit: str
    old: float  # median over the rounds
    new: float
    ratio: float  # new/old: median of the rounds' ratios
    lo: float
    hi: float
    band: float  # the noise band around 1.0 (relative)
    verdict: str  # "noise", "better" or "WORSE"


# --- the revision's checkout ---------------------------------------------------------------


def _git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # Our own checkouts: a copy owned by another user (make fresh-test's container runs as root
    # over the host user's files) must not stop git with "dubious ownership".
    trusted = f"safe.directory={cwd.resolve()}"
    return subprocess.run(
        ["git", "-c", trusted, *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def resolve(rev: str) -> str:
    found = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode:
        raise AgainstError(
            f"--against {rev!r}: not a commit of this repository; give a commit, tag or branch "
            "(`git log --oneline` lists them)"
        )
    return found.stdout.strip()


def _clean_at(tree: Path, sha: str) -> bool:
    """True when `tree` is a checkout of its own (not a plain folder inside this repository,
    where git would answer for the enclosing tree) at `sha`, with nothing changed in it."""
    if not (tree / ".git").is_file():
        return False
    head = _git("rev-parse", "HEAD", cwd=tree)
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=tree)
    return head.returncode == 0 and head.stdout.strip() == sha and status.stdout.strip() == ""


def remove(tree: Path) -> None:
    """Drop a checkout and git's record of it (a plain folder is just deleted)."""
    if _git("worktree", "remove", "--force", str(tree)).returncode:
        shutil.rmtree(tree, ignore_errors=True)
    _git("worktree", "prune")


def checkout(sha: str, base: Path = CHECKOUTS) -> Path:
    """The revision as a detached worktree under `base`, reused when clean at `sha`; any other
    checkout under `base` is stale and removed."""
    base.mkdir(parents=True, exist_ok=True)
    tree = base / sha[:12]
    for found in sorted(base.iterdir()):
        if found != tree or not _clean_at(found, sha):
            remove(found)
    if not tree.exists():
        added = _git("worktree", "add", "--detach", str(tree), sha)
        if added.returncode:
            raise AgainstError(f"git worktree add {sha[:12]} failed: {added.stderr.strip()}")
    _ensure_stubs(tree)
    return tree


def _ensure_stubs(tree: Path) -> None:
    """The revision's gRPC stubs, as its own build has them: committed (every revision so far),
    or else generated the way its `make protos` does, by its own scripts/gen_protos.py."""
    if (tree / STUBS).exists():
        return
    generator = tree / "scripts" / "gen_protos.py"
    if not generator.exists():
        raise AgainstError(f"{tree}: no committed stubs ({STUBS}) and no scripts/gen_protos.py")
    made = subprocess.run(
        [sys.executable, str(generator)], cwd=tree, capture_output=True, text=True, check=False
    )
    if made.returncode or not (tree / STUBS).exists():
        raise AgainstError(f"{tree}: scripts/gen_protos.py failed: {made.stderr[-2000:]}")


# --- one side's run ------------------------------------------------------------------------


def side_env(tree: Path) -> dict[str, str]:
    """The tree's own packages first: its leoflow_xcom before the venv's editable install, its
    bench and tests (an older bench's harness lives there) before anything else."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "services"), str(tree)])}


_PROBE = (
    "import json, bench, leoflow_xcom; "
    "print(json.dumps({'leoflow_xcom': leoflow_xcom.__file__, 'bench': bench.__file__}))"
)


def probe(side: Side) -> dict[str, str]:
    """Where the side's `leoflow_xcom` and `bench` come from, run exactly as its bench runs;
    an error unless both lie in the side's tree."""
    found = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=side.tree,
        env=side_env(side.tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode:
        raise AgainstError(f"{side.label}: cannot import its packages: {found.stderr[-2000:]}")
    paths: dict[str, str] = json.loads(found.stdout.strip().splitlines()[-1])
    for module, file in paths.items():
        if not Path(file).resolve().is_relative_to(side.tree.resolve()):
            raise AgainstError(
                f"{side.label}: {module} comes from {file}, not from {side.tree}: "
                "PYTHONPATH did not take precedence"
            )
    return paths


Measured = dict[tuple[str, int], dict[str, float]]


def run_side(side: Side, scenarios: Sequence[str], args: Sequence[str], into: Path) -> Measured:
    """One run of the side's own bench; {(scenario, clients): the Series fields}."""
    into.mkdir(parents=True, exist_ok=True)
    json_path, log_path = into / f"{side.name}.json", into / f"{side.name}.log"
    command = [sys.executable, "-m", "bench", *args, "--only", ",".join(scenarios)]
    command += ["--json", str(json_path), "--out", str(into / "plots")]
    with open(log_path, "wb") as log:
        done = subprocess.run(
            command,
            cwd=side.tree,
            env=side_env(side.tree),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=SIDE_TIMEOUT,
            check=False,
        )
    # 1: a target missed (a partial quick run is judged by the ratio here, not by targets);
    # 2: calls failed, whose figures compare nothing.
    if done.returncode not in (0, 1) or not json_path.exists():
        tail = log_path.read_text(errors="replace")[-3000:]
        raise AgainstError(f"{side.label}: its bench exited {done.returncode}:\n{tail}")
    measured: Measured = {}
    for series in json.loads(json_path.read_text())["series"]:
        if series["errors"]:
            raise AgainstError(
                f"{side.label}: {series['scenario']} had {series['errors']} failed calls: "
                f"{series['first_error']}"
            )
        measured[(series["scenario"], series["clients"])] = series
    missing = set(scenarios) - {name for name, _ in measured}
    if missing:
        raise AgainstError(
            f"{side.label}: its bench did not measure {', '.join(sorted(missing))} (unknown to "
            f"that revision?); choose others with --only (these: {', '.join(SCENARIOS)})"
        )
    return measured


# --- the comparison ------------------------------------------------------------------------


@dataclasses.dataclass
class Comparison:
    rev: str
    commit: str
    sides: dict[str, Side]
    paths: dict[str, dict[str, str]]  # side name -> probe()
    rounds: list[dict[str, Measured]]  # per round: side name -> its figures
    seconds: list[dict[str, float]]  # per round: side name -> wall seconds of its run


def compare(
    rev: str,
    rounds: int,
    scenarios: Sequence[str] = SCENARIOS,
    *,
    side_args: Sequence[str] = QUICK,
    base: Path = CHECKOUTS,
    say: Callable[[str], None] = print,
) -> Comparison:
    """Measure the revision and this tree, alternating which goes first each round."""
    commit = resolve(rev)
    say(f"bench: checking out {rev} ({commit[:12]}) under {base}")
    sides = {
        "old": Side("old", rev, checkout(commit, base)),
        "new": Side("new", "this tree", ROOT),
    }
    paths = {name: probe(side) for name, side in sides.items()}
    for name, side in sides.items():
        say(f"bench: {name} ({side.label}): leoflow_xcom from {paths[name]['leoflow_xcom']}")
    found = Comparison(rev, commit, sides, paths, [], [])
    with tempfile.TemporaryDirectory(prefix="leoflow-against-") as work:
        for round_no in range(rounds):
            # Alternate which side goes first, so a drift in load favours neither.
            order = ["old", "new"] if round_no % 2 == 0 else ["new", "old"]
            figures: dict[str, Measured] = {}
            took: dict[str, float] = {}
            for name in order:
                started = time.monotonic()
                into = Path(work) / f"round-{round_no}"
                figures[name] = run_side(sides[name], scenarios, side_args, into)
                took[name] = time.monotonic() - started
            found.rounds.append(figures)
            found.seconds.append(took)
            runs = ", ".join(f"{sides[n].label} {took[n]:.0f} s" for n in order)
            say(f"bench: against round {round_no + 1}/{rounds} done ({runs})")
    return found


def rows(found: Comparison) -> list[Row]:
    """Per scenario: p50 and client CPU per call at 1 client; throughput and service CPU per call
    at more clients."""
    out: list[Row] = []
    # What both sides measured in every round (a revision's bench may run other levels).
    both = set.intersection(*(set(m) for r in found.rounds for m in r.values()))
    for scenario, clients in sorted(both, key=lambda k: (SCENARIOS.index(k[0]), k[1])):
        metrics = [P50, CLIENT_CPU] if clients == 1 else [THROUGHPUT, SERVICE_CPU]
        for metric in metrics:
            out.append(_row(found, scenario, clients, metric))
    return out


def _row(found: Comparison, scenario: str, clients: int, metric: Metric) -> Row:
    def values(side: str) -> list[float]:
        return [float(r[side][(scenario, clients)][metric.field]) for r in found.rounds]

    old, new = values("old"), values("new")
    ratios = [n / o for n, o in zip(new, old, strict=True)]
    band = max(MIN_BAND, *(_half_spread(v) for v in (old, new)))
    ratio = statistics.median(ratios)
    if min(ratios) <= 1.0 <= max(ratios) or abs(ratio - 1.0) <= band:
        verdict = "noise"
    elif (ratio > 1.0) == metric.higher_is_better:
        verdict = "better"
    else:
        verdict = "WORSE"
    return Row(
        scenario,
        clients,
        metric.field,
        metric.unit,
        statistics.median(old),
        statistics.median(new),
        ratio,
        min(ratios),
        max(ratios),
        band,
        verdict,
    )


def _half_spread(values: Sequence[float]) -> float:
    """Half the relative range of one side's own rounds: how far the same code strays."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle / 2 if middle else math.inf


def verdict(found: Sequence[Row]) -> str:
    worse = [f"{r.scenario}@{r.clients} {r.unit}" for r in found if r.verdict == "WORSE"]
    if worse:
        return f"regression beyond noise: {'; '.join(worse)}"
    return "no regression beyond noise"


def table(found: Comparison, compared: Sequence[Row]) -> str:
    lines = [
        f"this tree against {found.rev} ({found.commit[:12]}), {len(found.rounds)} alternating "
        "rounds; old/new: medians; new/old: median ratio of the rounds (min-max); noise: the "
        "band around 1.0 (each side's own spread, at least "
        f"{MIN_BAND:.0%})",
        f"{'scenario':<22}{'clients':>7}  {'metric':<12}{'old':>10}{'new':>10}{'new/old':>9}"
        f"{'(min-max)':>13}{'noise':>7}  verdict",
    ]
    previous = ""
    for r in compared:
        name = r.scenario if r.scenario != previous else ""
        previous = r.scenario
        spread = f"{r.lo:.2f}-{r.hi:.2f}"
        lines.append(
            f"{name:<22}{r.clients:>7}  {r.unit:<12}{_figure(r.old):>10}{_figure(r.new):>10}"
            f"{r.ratio:>9.2f}{spread:>13}{f'±{r.band:.0%}':>7}  {r.verdict}"
        )
    lines.append(f"verdict: {verdict(compared)}")
    return "\n".join(lines)


def _figure(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:,.0f}"


def document(
    found: Comparison, compared: Sequence[Row], info: dict[str, object]
) -> dict[str, object]:
    head = _git("rev-parse", "HEAD").stdout.strip()
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    return {
        "machine": info,
        "rev": found.rev,
        "commit": found.commit,
        "this_tree": {"head": head, "uncommitted_changes": dirty},
        "imports": found.paths,
        "rounds": len(found.rounds),
        "side_seconds": found.seconds,
        "rows": [dataclasses.asdict(r) for r in compared],
        "verdict": verdict(compared),
        "per_round": [
            {
                side: {f"{s}@{c}": figures for (s, c), figures in measured.items()}
                for side, measured in per_round.items()
            }
            for per_round in found.rounds
        ],
    }


def main(rev: str, rounds: int, scenarios: Sequence[str], payload: int, out: Path | None) -> int:
    """The CLI: table on stdout, JSON beside the bench's other results. Exit 0: no regression
    beyond noise; 1: a regression; 2: the comparison could not be made."""
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or rounds < 1:
        print(
            f"bench: --against compares {', '.join(SCENARIOS)} over --against-rounds >= 1; "
            f"got {', '.join(unknown) or f'{rounds} rounds'}",
            file=sys.stderr,
        )
        return 2
    load_before = os.getloadavg()[0]
    print(f"bench: load average before: {load_before:.2f} (2 cores: >0.5 means noisy)")
    try:
        found = compare(rev, rounds, scenarios, side_args=[*QUICK, "--payload", str(payload)])
    except AgainstError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    load_after = os.getloadavg()[0]
    compared = rows(found)
    print(table(found, compared))
    print(f"bench: load average {load_before:.2f} before, {load_after:.2f} after")
    info = {
        **report.machine(),
        "load_before": load_before,
        "load_after": load_after,
        "payload_bytes": payload,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    path = out or ROOT / "build" / "bench" / f"against-{found.commit[:7]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document(found, compared, info), indent=2, allow_nan=True) + "\n")
    print(f"bench: wrote {path}")
    return 1 if any(r.verdict == "WORSE" for r in compared) else 0
