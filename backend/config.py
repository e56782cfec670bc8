"""Typed settings, read from the environment only at the entry points (CLI, WSGI)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.errors import SettingsError

PREFIX = "TAGLOOP_"
MODEL_KINDS = ("setfit",)
WORKERS = ("process", "inprocess", "redis")
PRIORITIES = ("idle", "low", "normal")
"""``training_priority`` values (``backend.jobs.priority``)."""
SLOW_TIERS = ("setfit", "transformer")
PRECISIONS = ("int8", "fp32", "torch")
SECRET_MARKERS = ("token", "password", "api_key")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every knob tagloop has. Each field maps to the env variable ``TAGLOOP_<FIELD>`` (upper case)."""

    data_dir: Path = Path("var")
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite (WAL) at ``<data_dir>/tagloop.db``."""
    model_kind: str = "setfit"
    base_model: str = ""
    """Directory of the sentence-transformers body; empty means the bundled all-MiniLM-L6-v2."""
    multi_label_threshold: float = 0.5
    train_every: int = 10
    """Queue a slow-tier (SetFit) training after this many new usable labels (0 turns it off)."""
    fast_tier: bool = True
    """Refit the heads on cached embeddings after every new label (debounced)."""
    keep_versions: int = 10
    """Model artifacts kept per project (the served version and bodies in use are always kept)."""
    promotion_tolerance: float = 0.02
    """A slow-tier version more than this below the served body's CV accuracy is kept but not served."""
    min_labels_to_train: int = 4
    setfit_num_iterations: int = 20
    setfit_max_steps: int = 200
    setfit_batch_size: int = 16
    max_seq_length: int = 128
    max_text_chars: int = 20_000
    """Longer texts are truncated before tokenisation (the tokenizer keeps max_seq_length tokens anyway)."""
    max_tasks_per_request: int = 1_000
    max_body_bytes: int = 20 * 1024 * 1024
    predict_batch_size: int = 32
    zero_shot_temperature: float = 0.05
    prior_strength: float = 20.0
    """How many labels the zero-shot prior counts for: with n labels, the fitted head's blend weight is at most
    n / (n + prior_strength) (0: no cap; see ``backend.training.evaluation``)."""
    worker: str = "process"
    """process: `tagloop serve` supervises one worker process (woken through a pipe); inprocess: worker threads in the
    web process; redis: `tagloop worker` processes woken through Redis (scaled out)."""
    plugins: str = "review"
    """Comma-separated optional features to install (``review``: moderation review queues); empty: none."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    training_priority: str = "idle"
    """CPU priority of training threads and `tagloop worker` processes: idle (SCHED_IDLE: serving always comes
    first), low (nice 19) or normal."""
    training_yield_ms: float = 200.0
    """Between two training steps, pause while this machine's web process served a request within this many ms
    (0: never pause); see ``backend.jobs.yielding``."""
    training_yield_share: float = 0.75
    """Most of a training's wall time spent paused for serving (not slowed at all while no request comes)."""
    worker_poll_s: float = 2.0
    job_stale_s: float = 60.0
    """A running job whose worker stopped heart-beating this long is requeued."""
    job_max_attempts: int = 3
    job_backoff_s: float = 5.0
    """Retry delay after a failed attempt, doubled each time."""
    strategy: str = "margin"
    """Query strategy for single-choice controls (a name from `strategies.REGISTRY` or a dotted path)."""
    multi_label_strategy: str = "mean_label_uncertainty"
    """Query strategy for multiple-choice controls."""
    catch_up_every_s: float = 60.0
    """Least time between two catch-ups of a project from Label Studio's API (triggered by /setup and start)."""
    push_top_k: int = 200
    """Predictions pushed to Label Studio per promoted version (the head of the annotator queue)."""
    push_interval_s: float = 10.0
    """Least time between two pushes of a project's queue to Label Studio: versions trained meanwhile join one
    queued push (each push is a few seconds of writes in Label Studio's database, see ``labelstudio.client``)."""
    push_pool_limit: int = 20_000
    """Unlabeled tasks scored per push."""
    push_protect_head: int = 3
    """The first unlabeled tasks of the previous push that a push treats as open in an annotator's editor: their
    predictions are kept (Label Studio refuses a submit whose pre-filled prediction was deleted)."""
    push_protect_s: float = 600.0
    """How long such a task stays protected (its predictions kept, one more per push) unless it is labeled first."""
    """Unlabeled tasks scored per push."""
    stop_set_size: int = 500
    """Tasks every version predicts for the stopping criteria (a fixed sample of the project's tasks)."""
    stop_every_labels: int = 10
    """Stabilizing predictions compares versions this many labels apart."""
    stop_kappa: float = 0.99
    """κ at or above which two versions agree enough that labels no longer change the model."""
    stop_window: int = 3
    """Checks in a row at or above ``stop_kappa`` before tagloop says the returns diminish."""
    ls_detach_after_s: float = 600.0
    """A project whose Label Studio has failed every call for this long is detached (a 404 for the project detaches
    it at once): no more catch-ups, pushes or scans until Label Studio calls tagloop for it again."""
    label_studio_url: str = ""
    label_studio_token: str = ""
    ls_venv: str = ""
    """Label Studio's own venv for ``tagloop demo`` (installed there when absent); empty means ``.ls-venv``."""
    seed: int = 42
    serve_cpus: str = ""
    """CPUs of the web process (a list like ``0-1``); empty: automatic (half the cores when there are more than 2,
    else no pinning). See ``backend.placement``."""
    train_cpus: str = ""
    """CPUs of the worker process(es); empty: automatic (the other cores when there are more than 2)."""
    device: str = "auto"
    """Where training runs: auto (a visible CUDA device, else the CPU), cpu or cuda. Serving stays on the CPU."""
    slow_tier_budget_s: float = 180.0
    """A slow-tier (SetFit) version should land this many seconds after its job starts: its contrastive steps stop
    when the budget, less the time kept for heads, saving and the ONNX export, is spent (0: no budget, the step cap
    alone). The next version resumes from the last fine-tuned body instead of starting over."""
    slow_tier_reserve_s: float = 60.0
    """Of ``slow_tier_budget_s``, the seconds kept for what follows the steps (heads, saving, export and parity)."""

    # --- slow tier: full fine-tuning of a transformer checkpoint (issue #4/#7) ---
    slow_tier: str = "setfit"
    """setfit: contrastive fine-tuning of the body + logistic heads; transformer: full fine-tuning of
    ``transformer_model`` with AutoModelForSequenceClassification."""
    transformer_model: str = ""
    """Local checkpoint directory for the transformer slow tier; empty means the bundled all-MiniLM-L6-v2."""
    transformer_epochs: int = 4
    transformer_batch_size: int = 16
    transformer_learning_rate: float = 5e-5
    transformer_patience: int = 2
    """Early stopping: epochs without validation improvement before training stops."""
    transformer_valid_fraction: float = 0.15
    distill: bool = False
    """After a transformer version, distill its predictions into a SetFit/MiniLM student and serve that."""

    # --- serving speed (issue #7) ---
    serve_precision: str = "int8"
    """int8 or fp32: serve an ONNX Runtime export of the body (after a parity check); torch: serve torch."""
    parity_min_agreement: float = 0.99
    batch_max_wait_ms: float = 5.0
    """Concurrent /predict requests are coalesced into one batch of up to predict_batch_size within this wait."""
    inference_threads: int = 0
    """Threads per inference session; 0 means one per CPU core."""
    write_behind_ms: float = 100.0
    """/predict's bookkeeping and new cached embeddings are written by a background thread at most this often
    (one transaction per interval instead of one per request); readers in the process flush first."""

    # --- authentication (issue #9) ---
    api_key: str = ""
    """Bearer token for tagloop's own API (/api/...); /api/feedback always requires it."""
    basic_auth_user: str = ""
    basic_auth_password: str = ""
    allow_unauthenticated: bool = False
    """Serve on a non-loopback address without auth (otherwise `tagloop serve` refuses)."""
    log_format: str = "text"
    """text: one line per record (a terminal); json: one JSON object per line with the request id (containers)."""

    # --- moderation review (issue #6) ---
    harmful_labels: str = ""
    """Comma-separated harmful choice values (in addition to those marked in the labeling config)."""
    review_target_precision: float = 0.9
    """Per harmful label, the flag threshold is chosen to reach this cross-validated precision."""
    review_low_confidence_band: float = 0.1
    """Flags whose score is within this distance of the threshold go to the low-confidence queue."""
    review_scan_every_s: float = 300.0
    """Least time between two review jobs of a moderated project run by idle workers (0: only on events)."""
    psi_bands: str = "0.1,0.25"
    """PSI thresholds: below the first is stable, between is moderate drift, above the second is major drift."""
    review_max_fp_rate: float = 0.0
    """When > 0, flag thresholds are chosen to keep the cross-validated FP rate at or below this instead."""
    review_suspect_confidence: float = 0.9
    """A labeled text is a label-error suspect when its out-of-fold prediction contradicts the label this surely."""
    psi_window: int = 1000
    """PSI compares this many newest served scores of a version with its reference window."""
    psi_reference_size: int = 500
    """Known tasks scored by a new version right after training: its PSI reference window."""
    feedback_max_bytes: int = 65_536
    """Largest body ``POST /api/feedback`` accepts (413 above)."""
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model_kind not in MODEL_KINDS:
            raise SettingsError(f"model_kind: got {self.model_kind!r}, expected one of {list(MODEL_KINDS)}")
        _check_strategy(self.strategy)
        _check_strategy(self.multi_label_strategy)
        if self.slow_tier not in SLOW_TIERS:
            raise SettingsError(f"slow_tier: got {self.slow_tier!r}, expected one of {list(SLOW_TIERS)}")
        if self.serve_precision not in PRECISIONS:
            raise SettingsError(f"serve_precision: got {self.serve_precision!r}, expected one of {list(PRECISIONS)}")
        if bool(self.basic_auth_user) != bool(self.basic_auth_password):
            raise SettingsError("basic_auth_user and basic_auth_password: set both or neither")
        if not 0.0 <= self.review_max_fp_rate < 1.0:
            raise SettingsError(f"review_max_fp_rate: got {self.review_max_fp_rate}, expected a number in [0, 1)")
        for name in ("psi_window", "psi_reference_size", "feedback_max_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected an integer >= 1")
        for name in ("transformer_valid_fraction", "review_target_precision", "review_suspect_confidence"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected a number in (0, 1)")
        if not 0.0 <= self.training_yield_share < 1.0:
            raise SettingsError(f"training_yield_share: got {self.training_yield_share}, expected a number in [0, 1)")
        if not 0.0 < self.parity_min_agreement <= 1.0:
            raise SettingsError(f"parity_min_agreement: got {self.parity_min_agreement}, expected a number in (0, 1]")
        for name in ("transformer_learning_rate",):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected a number > 0")
        for name in (
            "batch_max_wait_ms",
            "inference_threads",
            "write_behind_ms",
            "training_yield_ms",
            "review_low_confidence_band",
            "review_scan_every_s",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected a number >= 0")
        for name in ("transformer_epochs", "transformer_batch_size", "transformer_patience"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected an integer >= 1")
        self.psi_thresholds  # noqa: B018 (validates psi_bands)
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"log_format: got {self.log_format!r}, expected one of {list(LOG_FORMATS)}")
        if self.training_priority not in PRIORITIES:
            raise SettingsError(
                f"training_priority: got {self.training_priority!r}, expected one of {list(PRIORITIES)}"
            )
        if self.worker not in WORKERS:
            raise SettingsError(f"worker: got {self.worker!r}, expected one of {list(WORKERS)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise SettingsError(f"device: got {self.device!r}, expected one of ['auto', 'cpu', 'cuda']")
        for name in ("slow_tier_budget_s", "slow_tier_reserve_s"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected a number >= 0")
        if self.push_interval_s < 0:
            raise SettingsError(f"push_interval_s: got {self.push_interval_s}, expected a number >= 0")
        for name in ("worker_poll_s", "job_stale_s", "job_backoff_s", "ls_detach_after_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected a number > 0")
        if self.job_max_attempts < 1:
            raise SettingsError(f"job_max_attempts: got {self.job_max_attempts}, expected an integer >= 1")
        if not 0.0 < self.multi_label_threshold < 1.0:
            raise SettingsError(f"multi_label_threshold: got {self.multi_label_threshold}, expected a number in (0, 1)")
        for name in (
            "setfit_batch_size",
            "max_seq_length",
            "max_text_chars",
            "max_tasks_per_request",
            "max_body_bytes",
            "predict_batch_size",
            "min_labels_to_train",
            "keep_versions",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected an integer >= 1")
        for name in ("train_every", "setfit_num_iterations", "setfit_max_steps", "push_top_k", "push_pool_limit"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected an integer >= 0")
        if not 0.0 <= self.promotion_tolerance <= 1.0:
            raise SettingsError(f"promotion_tolerance: got {self.promotion_tolerance}, expected a number in [0, 1]")
        for name in ("stop_set_size", "stop_every_labels", "stop_window"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: got {getattr(self, name)}, expected an integer >= 1")
        if not 0.0 < self.stop_kappa <= 1.0:
            raise SettingsError(f"stop_kappa: got {self.stop_kappa}, expected a number in (0, 1]")
        if self.prior_strength < 0:
            raise SettingsError(f"prior_strength: got {self.prior_strength}, expected a number >= 0")
        if self.zero_shot_temperature <= 0:
            raise SettingsError(f"zero_shot_temperature: got {self.zero_shot_temperature}, expected > 0")

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
        try:
            low, high = (float(v) for v in self.psi_bands.split(","))
        except ValueError:
            raise SettingsError(f"psi_bands: got {self.psi_bands!r}, expected two numbers like '0.1,0.25'") from None
        if not 0 < low < high:
            raise SettingsError(f"psi_bands: got {self.psi_bands!r}, expected 0 < first < second")
        return low, high

    @property
    def models_dir(self) -> Path:
        """Where model version artifacts live."""
        return self.data_dir / "models"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``TAGLOOP_*`` variables; ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = PREFIX + f.name.upper()
            if f.name == "extra" or key not in env:
                continue
            values[f.name] = _convert(f.name, f.type, env[key])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def describe(self) -> dict[str, str]:
        """Settings as strings, with secrets masked (for logs and ``tagloop settings``)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            secret = any(marker in f.name for marker in SECRET_MARKERS)
            shown = re.sub(r"(://[^:/@\s]*:)[^@\s/]+@", r"\1***@", str(value))  # URL passwords
            out[f.name] = "***" if secret and value else shown
        return out


def _check_strategy(name: str) -> None:
    from strategies import StrategyError, get_strategy

    try:
        get_strategy(name)
    except StrategyError as exc:
        raise SettingsError(f"strategy: {exc}") from None


def _convert(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
        if kind == "bool":
            if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.strip().lower() in ("1", "true", "yes", "on")
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}: got {raw!r}, expected a {kind}") from None
    return raw
