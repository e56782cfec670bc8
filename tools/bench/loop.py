"""``tagloop bench loop``: one annotator in a real Label Studio, with a real tagloop as its ML backend.

Starts Label Studio (fresh data dir; SQLite there, or a fresh database on the local PostgreSQL server) and tagloop as
``make serve`` starts it (default settings, fresh data dir), reads a labeled CSV (``text,label``; multi-label cells
join labels with ``|``), shuffles it with the seed, holds out ``eval_n`` rows that are never imported and imports
``tasks`` others into a project with uncertainty sampling and pre-filled predictions, after connecting tagloop, and
waits until tagloop has pushed its ranking of them (the import queues that push). Before the first label it asks
tagloop for zero-shot predictions of every imported task and held-out row (tasks without ids and no project:
tagloop records nothing). Then one annotator takes ``/next``, looks at the suggestion shown, waits ``pace``
seconds and submits the CSV's label, ``labels`` times; a non-2xx answer from Label Studio is counted and the
annotator goes on. Once tagloop is idle, the served version predicts the held-out rows again.

Index spaces: task ids are Label Studio's; a row is a position in the shuffled CSV rows kept.
"""

from __future__ import annotations

import contextlib
import csv
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.errors import TagloopError
from backend.labelstudio.label_config import ControlSpec, parse_label_config
from tools.harness import (
    LS_DATABASES,
    LabelStudioServer,
    LsDatabase,
    PostgresDatabase,
    TagloopServer,
    ensure_label_studio,
    running,
)
from tools.labelstudio_project import Annotator, LsFailure, ServedTask, read_config, set_up_project, wait_for_queue

Progress = Callable[[str], None]
PREDICT_BATCH = 100
MAX_FAILURES_IN_A_ROW = 20
IDLE_WITHOUT_ALL_LABELS_S = 120.0
"""tagloop idle this long without every submitted label stored (a webhook Label Studio dropped, before the periodic
catch-up) counts as settled."""


SCORED_KEEP_VERSIONS = 100_000
"""``TAGLOOP_KEEP_VERSIONS`` of a run with ``score_versions`` (unless ``tagloop_env`` sets one): keep them all."""


class LoopBenchError(TagloopError):
    """The bench loop's input is unusable, or the annotator could not go on."""

    code = "bench_loop_failed"


@dataclass(frozen=True, kw_only=True)
class LoopBenchConfig:
    """What ``tagloop bench loop`` starts, loads and measures."""

    data: Path
    config: str
    """A labeling config: a path, or a name in ``annotation_configs/``."""
    ls_venv: Path
    labels: int = 100
    pace: float = 1.0
    strategy: str = ""
    """Query strategy set through tagloop's API before labeling; empty: none set (tagloop's default)."""
    ls_database: LsDatabase = "sqlite"
    eval_n: int = 400
    tasks: int = 1000
    seed: int = 42
    work: Path | None = None
    """Where both servers keep their data and logs (kept); default a temporary dir, removed after a success."""
    tagloop_env: Mapping[str, str] = field(default_factory=dict)
    """Settings of the tagloop server on top of its defaults (``TAGLOOP_*`` of this process are not passed)."""
    settle_timeout_s: float = 900.0
    score_versions: bool = False
    """After the servers stop: score every kept version on the held-out rows (``tools.bench.versions``)."""

    def __post_init__(self) -> None:
        for name, low in (("labels", 1), ("eval_n", 1), ("tasks", 1)):
            if getattr(self, name) < low:
                raise LoopBenchError(f"{name}: got {getattr(self, name)}, expected an integer >= {low}")
        if self.labels > self.tasks:
            raise LoopBenchError(f"labels: got {self.labels}, expected at most tasks ({self.tasks})")
        if self.pace < 0:
            raise LoopBenchError(f"pace: got {self.pace}, expected seconds >= 0")
        if self.ls_database not in LS_DATABASES:
            raise LoopBenchError(f"ls_database: got {self.ls_database!r}, expected one of {list(LS_DATABASES)}")


@dataclass(frozen=True)
class Row:
    """A labeled text of the CSV."""

    text: str
    labels: frozenset[str]


def bench_control(label_config: str) -> ControlSpec:
    """The config's one ``<Choices>`` control (the CSV has one label column)."""
    controls = parse_label_config(label_config).controls
    if len(controls) != 1:
        names = [c.name for c in controls]
        raise LoopBenchError(f"config: <Choices> controls {names}; expected exactly one (the CSV has one label column)")
    return controls[0]


def read_rows(path: Path, control: ControlSpec, progress: Progress) -> list[Row]:
    """The CSV's rows whose labels ``control`` has (single choice: exactly one); the count dropped to ``progress``."""
    if not path.is_file():
        raise LoopBenchError(f"data: got {str(path)!r}, expected a CSV file with columns text,label")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"text", "label"} <= set(reader.fieldnames or []):
            raise LoopBenchError(f"data: {path} has columns {reader.fieldnames}; expected text and label")
        rows = [Row(r["text"], frozenset(x for x in r["label"].split("|") if x)) for r in reader]
    known = set(control.labels)
    kept = [r for r in rows if r.labels <= known and (control.multi_label or len(r.labels) == 1)]
    if len(kept) < len(rows):
        progress(f"dropped {len(rows) - len(kept)} of {len(rows)} rows whose labels <Choices {control.name}> lacks")
    return kept


def predicted_choices(
    tagloop: TagloopServer, tasks: Sequence[Mapping[str, Any]], control: str, **body: Any
) -> tuple[list[frozenset[str]], str]:
    """tagloop's ``/predict`` of ``tasks`` (without ids: nothing is recorded) with ``body`` (``label_config`` and
    no project: zero-shot; ``project``: the served version), in batches; per task the choices of ``control``, and
    the model version."""
    out, version = [], ""
    for start in range(0, len(tasks), PREDICT_BATCH):
        batch = {**body, "tasks": list(tasks[start : start + PREDICT_BATCH])}
        answer = tagloop.call("POST", "/predict", json=batch, timeout=600)
        version = str(answer["model_version"])
        for result in answer["results"]:
            items = [i for i in result["result"] if i["from_name"] == control]
            out.append(frozenset(items[0]["value"]["choices"]) if items else frozenset())
    return out, version


def accuracy(predicted: Sequence[frozenset[str]], rows: Sequence[Row]) -> float:
    """Share of ``rows`` whose label set equals the prediction (exact-set match; single choice: the label)."""
    return round(sum(p == r.labels for p, r in zip(predicted, rows, strict=True)) / len(rows), 4)


@dataclass
class AnnotatorLog:
    """What the annotator saw and did."""

    labels: int = 0
    suggestions_right: int = 0
    zero_shot_right: int = 0
    shown: int = 0
    prefilled: int = 0
    not_prefilled: list[dict[str, Any]] = field(default_factory=list)
    """Labels whose task came from ``/next`` without a prediction of the project's model_version (the page shows
    nothing pre-filled): label number, task, and the newest prediction the task had instead."""
    versions: list[str] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    failures: list[LsFailure] = field(default_factory=list)


def annotate(
    annotator: Annotator, truth: Mapping[int, Row], zero_shot: Mapping[int, frozenset[str]], config: LoopBenchConfig,
    progress: Progress,
) -> AnnotatorLog:  # fmt: skip
    """``config.labels`` labels through the labeling stream (``truth`` and ``zero_shot`` by LS task id)."""
    log, in_a_row = AnnotatorLog(), 0
    while log.labels < config.labels:
        outcome = _one_label(annotator, truth, config.pace, log)
        if isinstance(outcome, LsFailure):
            log.failures.append(outcome)
            progress(f"Label Studio error {len(log.failures)}: {outcome.call} -> {outcome.status} {outcome.body!r}")
            in_a_row += 1
            if in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise LoopBenchError(f"{in_a_row} Label Studio errors in a row; the last: {outcome}")
            continue
        in_a_row = 0
        suggestion, row = outcome.suggestion, truth[outcome.id]
        right = suggestion is not None and frozenset(suggestion.choices) == row.labels
        log.labels += 1
        log.suggestions_right += right
        zero_shot_right = zero_shot[outcome.id] == row.labels
        log.zero_shot_right += zero_shot_right
        if suggestion is not None:
            log.shown += 1
            log.prefilled += suggestion.prefilled
            log.versions.append(suggestion.model_version)
        shown = f"{sorted(suggestion.choices)} ({suggestion.model_version})" if suggestion else "none"
        if suggestion is None or not suggestion.prefilled:
            newest = suggestion.model_version if suggestion else None
            log.not_prefilled.append({"label": log.labels, "task": outcome.id, "newest_prediction": newest})
            shown += ", not pre-filled: /next sent no prediction of the project's version" if suggestion else ""
        progress(
            f"label {log.labels}/{config.labels}: task {outcome.id}, suggestion {shown} "
            f"{'right' if right else 'wrong'} (zero-shot {'right' if zero_shot_right else 'wrong'}), "
            f"/next {outcome.next_ms:.0f} ms"
        )
    return log


def _one_label(
    annotator: Annotator, truth: Mapping[int, Row], pace: float, log: AnnotatorLog
) -> ServedTask | LsFailure:
    """``/next``, the pace, then a submit of the CSV's label; the task served, or the first failure."""
    served = annotator.next_task()
    if isinstance(served, LsFailure):
        return served
    log.next_ms.append(served.next_ms)
    if served.id not in truth:
        raise LoopBenchError(f"/next served task {served.id}, which the bench did not import")
    started = time.monotonic()
    time.sleep(pace)
    failed = annotator.submit(served, sorted(truth[served.id].labels), lead_time=time.monotonic() - started)
    return failed or served


def settle(tagloop: TagloopServer, project_id: int, labels: int, timeout: float, progress: Progress) -> dict[str, Any]:
    """Wait until tagloop has no queued or running job of the project (and has every label, or has been idle
    without some for a while); capped at ``timeout`` s."""
    started = time.monotonic()
    idle_since: float | None = None
    while (waited := time.monotonic() - started) < timeout:
        status = tagloop.call("GET", f"/api/projects/{project_id}/status")
        if status["jobs"]:
            idle_since = None
        else:
            idle_since = idle_since or time.monotonic()
            if status["labels_usable"] >= labels or time.monotonic() - idle_since > IDLE_WITHOUT_ALL_LABELS_S:
                stored = status["labels_usable"]
                return {"settle_seconds": round(waited, 1), "settle_capped": False, "labels_stored": stored}
        time.sleep(1.0)
    progress(f"tagloop still had jobs after {timeout:.0f} s: measuring the held-out rows with what it serves now")
    status = tagloop.call("GET", f"/api/projects/{project_id}/status")
    return {"settle_seconds": round(timeout, 1), "settle_capped": True, "labels_stored": status["labels_usable"]}


@contextlib.contextmanager
def servers(
    config: LoopBenchConfig, work: Path, progress: Progress
) -> Iterator[tuple[LabelStudioServer, TagloopServer]]:
    """Label Studio (on a fresh database with ``postgresql``, dropped afterwards) and tagloop, both running."""
    for sub in ("label-studio", "tagloop"):
        if (work / sub).exists() and any((work / sub).iterdir()):
            raise LoopBenchError(f"work: {work / sub} is not empty; expected a new or empty work directory")
    executable = ensure_label_studio(config.ls_venv, progress)
    fresh = f"tagloop_bench_ls_{uuid.uuid4().hex[:12]}"
    database = PostgresDatabase(fresh) if config.ls_database == "postgresql" else None
    ls = LabelStudioServer(executable, work / "label-studio", database=database)
    env = dict(config.tagloop_env)
    if config.score_versions:  # scoring needs every version's artifact (retention would prune all but 10)
        env.setdefault("TAGLOOP_KEEP_VERSIONS", str(SCORED_KEEP_VERSIONS))
    tagloop = TagloopServer(env, data_dir=work / "tagloop", inherit_settings=False)
    try:
        if database is not None:
            database.create()
        progress(f"starting Label Studio on {ls.url} ({config.ls_database}) and tagloop on {tagloop.url} in {work}")
        with running(ls, tagloop):
            yield ls, tagloop
    finally:
        if database is not None:
            database.drop()


def run_loop_bench(config: LoopBenchConfig, progress: Progress) -> dict[str, Any]:
    """The whole run (module docstring); the report, whose keys the command prints as its last line."""
    began = time.monotonic()
    say = progress
    progress = lambda message: say(f"[{time.monotonic() - began:7.1f} s] {message}")  # noqa: E731
    label_config = read_config(config.config)
    control = bench_control(label_config)
    rows = read_rows(config.data, control, progress)
    random.Random(config.seed).shuffle(rows)
    if len(rows) < config.eval_n + config.labels:
        raise LoopBenchError(f"data: {len(rows)} usable rows; expected at least eval_n + labels")
    held_out, pool = rows[: config.eval_n], rows[config.eval_n : config.eval_n + config.tasks]
    work = config.work or Path(tempfile.mkdtemp(prefix="tagloop-bench-loop-"))
    with servers(config, work, progress) as (ls, tagloop):
        report = _measure(config, (ls, tagloop), label_config, control, (pool, held_out), progress)
    if config.score_versions:
        from tools.bench.versions import score_versions, summary

        progress("scoring every kept version on the held-out rows")
        truth = [sorted(r.labels) for r in held_out]
        scored = score_versions(work / "tagloop", report["project"], [r.text for r in held_out], truth)
        report |= summary(scored) | {"versions_scored": scored}
    if config.work is None:
        shutil.rmtree(work, ignore_errors=True)
    extras: dict[str, Any] = {"ls_database": config.ls_database, "tasks": len(pool), "eval_n": len(held_out)}
    extras |= {"pace": config.pace, "seed": config.seed, "config": config.config, "data": str(config.data)}
    return report | extras | {"seconds": round(time.monotonic() - began, 1)}


def _measure(
    config: LoopBenchConfig, both: tuple[LabelStudioServer, TagloopServer], label_config: str, control: ControlSpec,
    rows: tuple[list[Row], list[Row]], progress: Progress,
) -> dict[str, Any]:  # fmt: skip
    ls, tagloop = both
    pool, held_out = rows
    key = control.value_key
    progress(f"project: {len(pool)} tasks imported after connecting tagloop; {len(held_out)} rows held out")
    pid, task_ids = set_up_project(
        ls.client(), tagloop, title="tagloop bench loop", label_config=label_config,
        data=[{key: r.text} for r in pool], strategy=config.strategy or None,
    )  # fmt: skip
    queued = time.monotonic()
    queue = wait_for_queue(ls.client(), tagloop, pid, timeout=300)
    progress(
        f"tagloop ranked the pool and Label Studio serves {queue.model_version} ({time.monotonic() - queued:.1f} s)"
    )
    progress("zero-shot predictions of every imported task and held-out row (nothing recorded)")
    pool_tasks = [{"data": {key: r.text}} for r in pool]
    held_tasks = [{"data": {key: r.text}} for r in held_out]
    zero_pool, _ = predicted_choices(tagloop, pool_tasks, control.name, label_config=label_config)
    zero_held, zero_version = predicted_choices(tagloop, held_tasks, control.name, label_config=label_config)
    progress(f"annotating {config.labels} tasks at one per {config.pace:g} s")
    annotator = Annotator(ls.client(max_retries=0), pid, control.name, control.to_name)
    log = annotate(
        annotator, dict(zip(task_ids, pool, strict=True)), dict(zip(task_ids, zero_pool, strict=True)), config, progress
    )
    for failure in log.failures:
        progress(f"ls error: {failure.call} -> {failure.status} {failure.body!r}")
    progress("waiting until tagloop has no queued or running job")
    settled = settle(tagloop, pid, log.labels, config.settle_timeout_s, progress)
    progress(f"tagloop idle after {settled['settle_seconds']} s; the served version predicts the held-out rows")
    after, after_version = predicted_choices(tagloop, held_tasks, control.name, project=pid)
    status = tagloop.call("GET", f"/api/projects/{pid}/status")
    return {
        "labels": log.labels,
        "suggestions_right": log.suggestions_right,
        "zero_shot_right_same_tasks": log.zero_shot_right,
        "ls_errors": len(log.failures),
        "heldout_before": accuracy(zero_held, held_out),
        "heldout_after": accuracy(after, held_out),
        "versions_seen": len(set(log.versions)),
        "next_p50_ms": round(statistics.median(log.next_ms), 1) if log.next_ms else None,
        "strategy": status["strategy"],
        "versions": list(dict.fromkeys(log.versions)),
        "suggestions_shown": log.shown,
        "suggestions_prefilled": log.prefilled,
        "not_prefilled": log.not_prefilled,
        "ls_error_statuses": sorted({f.status for f in log.failures}),
        "next_p95_ms": round(sorted(log.next_ms)[int(0.95 * (len(log.next_ms) - 1))], 1) if log.next_ms else None,
        "heldout_before_version": zero_version,
        "heldout_version": after_version,
        "project": pid,
        "tagloop_last_error": status["last_error"],
        **settled,
    }
