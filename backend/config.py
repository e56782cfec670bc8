"""Typed settings, declared once: each field is the variable ``TAGLOOP_<FIELD>``, its default and what it allows.

``Settings(...)`` takes only its arguments (tests and tools pass values in); ``Settings.from_env()`` adds the
``TAGLOOP_*`` variables and is called only by the entry points (CLI, WSGI). A value outside what a field allows
raises ``SettingsError`` naming the field (or the variable), the value seen and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from backend.errors import SettingsError

PREFIX = "TAGLOOP_"
ModelKind = Literal["setfit"]
Worker = Literal["process", "inprocess", "redis"]
Priority = Literal["idle", "low", "normal"]
"""``training_priority`` values (``backend.jobs.priority``)."""
SlowTier = Literal["setfit", "transformer"]
Precision = Literal["int8", "fp32", "torch"]
LogFormat = Literal["text", "json"]
Device = Literal["auto", "cpu", "cuda"]
MODEL_KINDS, WORKERS, PRIORITIES = get_args(ModelKind), get_args(Worker), get_args(Priority)
SLOW_TIERS, PRECISIONS, LOG_FORMATS = get_args(SlowTier), get_args(Precision), get_args(LogFormat)
SECRET_MARKERS = ("token", "password", "api_key")

AtLeastOne = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(gt=0, lt=1)]
"""A number in (0, 1)."""


class Settings(BaseSettings):
    """Every knob tagloop has. Each field maps to the env variable ``TAGLOOP_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, frozen=True, extra="forbid", use_attribute_docstrings=True, protected_namespaces=()
    )

    data_dir: Path = Path("var")
    """Data directory: the SQLite database, model artifacts, logs of the supervised worker."""
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite (WAL) at ``<data_dir>/tagloop.db``."""
    model_kind: ModelKind = "setfit"
    """Model family (SetFit bodies with logistic heads)."""
    base_model: str = ""
    """Directory of the sentence-transformers body; empty means the bundled all-MiniLM-L6-v2."""
    multi_label_threshold: Share = 0.5
    """Probability at which a multiple-choice label is predicted."""
    train_every: Count = 10
    """Queue a slow-tier (SetFit) training after this many new usable labels (0 turns it off)."""
    fast_tier: bool = True
    """Refit the heads on cached embeddings after every new label (debounced)."""
    keep_versions: AtLeastOne = 10
    """Model artifacts kept per project (the served version and bodies in use are always kept)."""
    promotion_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.02
    """A slow-tier version more than this below the served body's accuracy (on the labels that came in while it
    trained, else cross-validated) is kept but not served."""
    promotion_fresh_labels: AtLeastOne = 20
    """A SetFit version is compared with the served body on the labels that came in while it trained when there are
    at least this many (neither saw them), else on cross-validation of the training labels."""
    min_labels_to_train: AtLeastOne = 4
    """Fewer labeled rows than this: training fails with a clear error, the old version keeps serving."""
    setfit_num_iterations: Count = 20
    """SetFit pair-generation iterations (0 skips body fine-tuning: heads only)."""
    setfit_max_steps: Count = 200
    """Cap on contrastive training steps per SetFit version (0 skips body fine-tuning)."""
    setfit_batch_size: AtLeastOne = 16
    """Contrastive batch size."""
    max_seq_length: AtLeastOne = 128
    """Tokens kept per text."""
    max_text_chars: AtLeastOne = 20_000
    """Longer texts are truncated before tokenisation (the tokenizer keeps max_seq_length tokens anyway)."""
    max_tasks_per_request: AtLeastOne = 1_000
    """Tasks per ``/predict`` request (422 above)."""
    max_body_bytes: AtLeastOne = 20 * 1024 * 1024
    """Request body limit (413 above)."""
    predict_batch_size: AtLeastOne = 32
    """Encoder batch size; concurrent ``/predict`` calls are merged into batches of at most this many texts."""
    zero_shot_temperature: Positive = 0.05
    """Softmax (single choice) or sigmoid (multiple choice) temperature of the zero-shot head."""
    prior_strength: NonNegative = 20.0
    """How many labels the zero-shot prior counts for: with n labels, the fitted head's blend weight is at most
    n / (n + prior_strength) (0: no cap; see ``backend.training.evaluation``)."""
    worker: Worker = "process"
    """process: `tagloop serve` supervises one worker process (woken through a pipe); inprocess: worker threads in the
    web process; redis: `tagloop worker` processes woken through Redis (scaled out)."""
    plugins: str = "review"
    """Comma-separated optional features to install (``review``: moderation review queues); empty: none."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis for ``worker=redis`` (wake-ups only: the database is the only record of a job)."""
    training_priority: Priority = "idle"
    """CPU priority of training threads and `tagloop worker` processes: idle (SCHED_IDLE: serving always comes
    first), low (nice 19) or normal."""
    training_yield_ms: NonNegative = 200.0
    """Between two training steps, pause while this machine's web process served a request within this many ms
    (0: never pause); see ``backend.jobs.yielding``."""
    training_yield_share: Annotated[float, Field(ge=0, lt=1)] = 0.95
    """Most of a training's wall time spent paused for serving (not slowed at all while no request comes; under
    sustained traffic the training still runs at least 1 - this share of the time)."""
    worker_poll_s: Positive = 2.0
    """A worker looks for runnable jobs at least this often (retries after backoff, lost wake-ups)."""
    job_stale_s: Positive = 60.0
    """A running job whose worker stopped heart-beating this long is requeued."""
    job_max_attempts: AtLeastOne = 3
    """A failing job is retried with backoff, then marked ``failed`` after this many attempts."""
    job_backoff_s: Positive = 5.0
    """Retry delay after a failed attempt, doubled each time."""
    strategy: str = "margin"
    """Query strategy for single-choice controls (a name from `strategies.REGISTRY` or a dotted path)."""
    multi_label_strategy: str = "mean_label_uncertainty"
    """Query strategy for multiple-choice controls."""
    warmup_labels: Count = 20
    """Until a project has this many labels its queue is a random sample of its tasks (``warmup_strategy``), then
    the query strategy takes over: a seed set like the simulation's ``--seed-size``, representative of the pool, on
    which suggestions are right about as often as zero-shot (the tasks an unfitted model is least sure of are the
    ones its suggestions get wrong). 0: the query strategy from the first task."""
    strategy_max_pool: Count = 200
    """The queue strategy ranks a uniform random sample of this many unlabeled tasks, drawn again at every push (0:
    always the whole pool; see ``strategies.calling``). Margin's picks are then the least certain of a typical
    sample rather than the pool's most ambiguous rows, whose suggestions were right less often than zero-shot's
    (``docs/benchmarks.md``, "Margin over a sample"); diversity strategies embed only the sample."""
    warmup_strategy: str = "random"
    """Strategy of the warm-up queue (a name from `strategies.REGISTRY`)."""
    catch_up_every_s: float = 60.0
    """Least time between two catch-ups of a project from Label Studio's API (triggered by /setup and start)."""
    push_top_k: Count = 200
    """Predictions pushed to Label Studio per promoted version (the head of the annotator queue)."""
    push_interval_s: NonNegative = 10.0
    """Least time between two pushes of a project's queue to Label Studio: versions trained meanwhile join one
    queued push (each push is a few seconds of writes in Label Studio's database, see ``labelstudio.client``)."""
    push_pool_limit: Count = 20_000
    """Unlabeled tasks scored per push."""
    push_protect_head: int = 3
    """The first unlabeled tasks of the previous push that a push treats as open in an annotator's editor: their
    predictions are kept (Label Studio refuses a submit whose pre-filled prediction was deleted)."""
    push_protect_s: float = 600.0
    """How long such a task stays protected (its predictions kept, one more per push) unless it is labeled first."""
    stop_set_size: AtLeastOne = 500
    """Tasks every version predicts for the stopping criteria (a fixed sample of the project's tasks)."""
    stop_every_labels: AtLeastOne = 10
    """Stabilizing predictions compares versions this many labels apart."""
    stop_kappa: Annotated[float, Field(gt=0, le=1)] = 0.99
    """κ at or above which two versions agree enough that labels no longer change the model."""
    stop_window: AtLeastOne = 3
    """Checks in a row at or above ``stop_kappa`` before tagloop says the returns diminish."""
    ls_detach_after_s: Positive = 600.0
    """A project whose Label Studio has failed every call for this long is detached (a 404 for the project detaches
    it at once): no more catch-ups, pushes or scans until Label Studio calls tagloop for it again."""
    label_studio_url: str = ""
    """Label Studio address tagloop calls (otherwise the one ``/setup`` sent); set it where that one is not reachable
    from tagloop (containers)."""
    label_studio_token: str = ""
    """Label Studio API token (otherwise the one ``/setup`` sent)."""
    ls_venv: str = ""
    """Label Studio's own venv for ``tagloop demo`` (installed there when absent); empty means ``.ls-venv``."""
    seed: int = 42
    """Seed of training, cross-validation folds and tie-breaking."""
    serve_cpus: str = ""
    """CPUs of the web process (a list like ``0-1``); empty: automatic (half the cores when there are more than 2,
    else no pinning). See ``backend.placement``."""
    train_cpus: str = ""
    """CPUs of the worker process(es); empty: automatic (the other cores when there are more than 2)."""
    device: Device = "auto"
    """Where training runs: auto (a visible CUDA device, else the CPU), cpu or cuda. Serving stays on the CPU."""
    slow_tier_budget_s: NonNegative = 180.0
    """A slow-tier (SetFit) version should land this many seconds after its job starts: its contrastive steps stop
    when the budget, less the time kept for heads, saving and the ONNX export, is spent (0: no budget, the step cap
    alone). The next version resumes from the last fine-tuned body instead of starting over."""
    slow_tier_reserve_s: NonNegative = 60.0
    """Of ``slow_tier_budget_s``, the seconds kept for what follows the steps (heads, saving, export and parity)."""

    # --- slow tier: full fine-tuning of a transformer checkpoint (issue #4/#7) ---
    slow_tier: SlowTier = "setfit"
    """setfit: contrastive fine-tuning of the body + logistic heads; transformer: full fine-tuning of
    ``transformer_model`` with AutoModelForSequenceClassification."""
    transformer_model: str = ""
    """Local checkpoint directory for the transformer slow tier; empty means the bundled all-MiniLM-L6-v2."""
    transformer_epochs: AtLeastOne = 4
    """Epochs of the transformer tier (AdamW, linear warm-up over 10 % and decay)."""
    transformer_batch_size: AtLeastOne = 16
    """Batch size of the transformer tier."""
    transformer_learning_rate: Positive = 5e-5
    """Learning rate of the transformer tier."""
    transformer_patience: AtLeastOne = 2
    """Early stopping: epochs without validation improvement before training stops."""
    transformer_valid_fraction: Share = 0.15
    """Stratified validation split of the transformer tier (early stopping, best epoch kept)."""
    distill: bool = False
    """After a transformer version, distill its predictions into a SetFit/MiniLM student and serve that."""

    # --- serving speed (issue #7) ---
    serve_precision: Precision = "int8"
    """int8 or fp32: serve an ONNX Runtime export of the body (after a parity check); torch: serve torch."""
    parity_min_agreement: Annotated[float, Field(gt=0, le=1)] = 0.99
    """Share of a trained head's arg-max decisions an exported (ONNX) body must keep on the project's texts."""
    batch_max_wait_ms: NonNegative = 5.0
    """Concurrent /predict requests are coalesced into one batch of up to predict_batch_size within this wait."""
    inference_threads: Count = 0
    """Threads per inference session; 0 means one per CPU core."""
    write_behind_ms: NonNegative = 100.0
    """/predict's bookkeeping and new cached embeddings are written by a background thread at most this often
    (one transaction per interval instead of one per request); readers in the process flush first."""

    # --- authentication (issue #9) ---
    api_key: str = ""
    """Bearer token for tagloop's own API (/api/...); /api/feedback always requires it."""
    basic_auth_user: str = ""
    """HTTP Basic user required on ``/setup``, ``/predict``, ``/webhook`` (set both or neither)."""
    basic_auth_password: str = ""
    """HTTP Basic password (set both or neither)."""
    allow_unauthenticated: bool = False
    """Serve on a non-loopback address without auth (otherwise `tagloop serve` refuses)."""
    log_format: LogFormat = "text"
    """text: one line per record (a terminal); json: one JSON object per line with the request id (containers)."""

    # --- moderation review (issue #6) ---
    harmful_labels: str = ""
    """Comma-separated harmful choice values (in addition to those marked in the labeling config)."""
    review_target_precision: Share = 0.9
    """Per harmful label, the flag threshold is chosen to reach this cross-validated precision."""
    review_low_confidence_band: NonNegative = 0.1
    """Flags whose score is within this distance of the threshold go to the low-confidence queue."""
    review_scan_every_s: NonNegative = 300.0
    """Least time between two review jobs of a moderated project run by idle workers (0: only on events)."""
    psi_bands: str = "0.1,0.25"
    """PSI thresholds: below the first is stable, between is moderate drift, above the second is major drift."""
    review_max_fp_rate: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """When > 0, flag thresholds are chosen to keep the cross-validated FP rate at or below this instead."""
    review_suspect_confidence: Share = 0.9
    """A labeled text is a label-error suspect when its out-of-fold prediction contradicts the label this surely."""
    psi_window: AtLeastOne = 1000
    """PSI compares this many newest served scores of a version with its reference window."""
    psi_reference_size: AtLeastOne = 500
    """Known tasks scored by a new version right after training: its PSI reference window."""
    feedback_max_bytes: AtLeastOne = 65_536
    """Largest body ``POST /api/feedback`` accepts (413 above)."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(settings_reason(exc)) from exc

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings(...)`` takes its arguments only: the environment is read by ``from_env`` alone."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build settings from ``TAGLOOP_*`` variables (of ``os.environ`` by default); ``overrides`` that are not
        None win over the environment."""
        variables = _Variables(cls, os.environ if environ is None else environ)()
        overrides = {name: value for name, value in overrides.items() if value is not None}
        try:
            return cls(**{**variables, **overrides})
        except SettingsError as exc:  # name the variable when the value came from the environment
            if not isinstance(exc.__cause__, ValidationError):
                raise
            raise SettingsError(settings_reason(exc.__cause__, variables=set(variables) - set(overrides))) from None

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and checked (like ``dataclasses.replace``)."""
        return type(self)(**{**dict(self), **changes})

    @field_validator("strategy", "multi_label_strategy", "warmup_strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        from strategies import StrategyError, get_strategy

        try:
            get_strategy(name)
        except StrategyError as exc:
            raise ValueError(str(exc)) from None
        return name

    @field_validator("psi_bands")
    @classmethod
    def _two_bands(cls, text: str) -> str:
        _psi_pair(text)
        return text

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if bool(self.basic_auth_user) != bool(self.basic_auth_password):
            raise ValueError("basic_auth_user and basic_auth_password: set both or neither")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite under ``data_dir``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'tagloop.db').resolve()}"

    @property
    def harmful_label_set(self) -> frozenset[str]:
        """Harmful choice values named in settings."""
        return frozenset(v.strip() for v in self.harmful_labels.split(",") if v.strip())

    @property
    def psi_thresholds(self) -> tuple[float, float]:
        """(moderate, major) PSI thresholds from ``psi_bands``."""
        return _psi_pair(self.psi_bands)

    @property
    def models_dir(self) -> Path:
        """Where model version artifacts live."""
        return self.data_dir / "models"

    def describe(self) -> dict[str, str]:
        """Settings as strings, with secrets masked (for logs and ``tagloop settings``)."""
        out = {}
        for name, value in self:
            secret = any(marker in name for marker in SECRET_MARKERS)
            shown = re.sub(r"(://[^:/@\s]*:)[^@\s/]+@", r"\1***@", str(value))  # URL passwords
            out[name] = "***" if secret and value else shown
        return out


class _Variables(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (``TAGLOOP_<FIELD>``, any case)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self.environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _psi_pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"got {text!r}, expected two numbers like '0.1,0.25'") from None
    if not 0 < low < high:
        raise ValueError(f"got {text!r}, expected 0 < first < second")
    return low, high


def settings_reason(exc: ValidationError, *, variables: Collection[str] = ()) -> str:
    """``name: got X, expected …`` for the first error (``TAGLOOP_NAME`` when the value came from ``variables``)."""
    error: ErrorDetails = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else ""
    where = PREFIX + name.upper() if name in variables else name
    if error["type"] == "value_error":  # a validator above: its message says what it saw and wants
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{where}: {message}" if where else message
    field = Settings.model_fields.get(name)
    if field is None:
        return f"{where}: got {error['input']!r}, but there is no such setting"
    kind = field.annotation
    if error["type"] == "literal_error":
        expected = f"one of {list(get_args(kind))}"
    elif error["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        expected = f"{'an integer' if kind is int else 'a number'} {_bounds(field.metadata)}"
    else:  # the value is not of the field's type
        expected = f"a {getattr(kind, '__name__', kind)}"
    return f"{where}: got {error['input']!r}, expected {expected}"


def _bounds(metadata: list[Any]) -> str:
    """``>= 1``, ``> 0`` or ``in (0, 1]`` from a field's annotated-types constraints."""
    low = next((m for m in metadata if isinstance(m, (Ge, Gt))), None)
    high = next((m for m in metadata if isinstance(m, (Le, Lt))), None)
    lo = f"{(low.ge if isinstance(low, Ge) else low.gt):g}" if low else ""
    hi = f"{(high.le if isinstance(high, Le) else high.lt):g}" if high else ""
    if low and high:
        return f"in {'[' if isinstance(low, Ge) else '('}{lo}, {hi}{']' if isinstance(high, Le) else ')'}"
    if low:
        return f"{'>=' if isinstance(low, Ge) else '>'} {lo}"
    return f"{'<=' if isinstance(high, Le) else '<'} {hi}"


def settings_table() -> str:
    """Every setting as a Markdown table: variable, default, what it does (``tagloop settings --markdown``; the
    table in docs/operations.md is this output, checked by a test)."""
    defaults = Settings()
    rows = ["| variable | default | what |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        value = getattr(defaults, name)
        shown = "*(empty)*" if value == "" else f"`{value}`"
        what = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{PREFIX}{name.upper()}` | {shown} | {what} |")
    return "\n".join(rows)
