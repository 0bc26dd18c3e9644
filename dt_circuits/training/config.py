"""``TrainConfig``: every knob of a training run, and the ``dt-circuits train`` flags generated from it.

One source (CleanRL style): each field's default, help text and flag live here; the command builds its parser
from the dataclass, maps the parsed flags back to a config, and spells out the exact command recorded in each
manifest. Importing this module does not load torch, so ``dt-circuits train --help`` answers at once.
"""

from __future__ import annotations

import argparse
import math
import shlex
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from dt_circuits.core.errors import ConfigError

if TYPE_CHECKING:
    from dt_circuits.dt.model import DTConfig
    from dt_circuits.env.spec import EnvSpec


def _knob(default: Any, help: str, *, flag: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run; stored verbatim in the checkpoint manifest."""

    obs_encoding: str = _knob(
        "index",
        "observation encoding inside the model: raw Minigrid indices (the post) or one-hot",
        flag="--encoding",
        choices=("index", "one_hot"),
    )
    n_layers: int = _knob(1, "transformer layers")
    n_heads: int = _knob(2, "attention heads")
    d_model: int = _knob(128, "residual width")
    d_head: int = _knob(64, "head width")
    d_mlp: int = _knob(256, "MLP width")
    batch_size: int = _knob(256, "batch size")
    lr: float = _knob(1.5e-3, "AdamW learning rate")
    lr_schedule: str = _knob(
        "cosine", "constant (as DTI) or linear warm-up then cosine decay to 0", choices=("constant", "cosine")
    )
    warmup_steps: int = _knob(200, "warm-up steps for cosine")
    weight_decay: float = _knob(1e-3, "AdamW weight decay")
    betas: tuple[float, float] = _knob((0.9, 0.999), "AdamW betas")
    prob_go_from_end: float = _knob(0.1, "chance a sampled step is replaced by its trajectory's last step, as DTI")
    steps: int = _knob(5000, "optimizer steps")
    seed: int = _knob(0, "seed for init and batch sampling")
    threads: int = _knob(
        1,
        "torch threads; part of the reproducibility contract, recorded in the manifest (1 measured faster than 2 "
        "on the 2-core machine)",
    )
    log_every: int = _knob(100, "steps per loss-curve point")
    eval_every: int = _knob(0, "steps between quick in-env evaluations during training (0: only at the end)")
    eval_episodes: int = _knob(50, "episodes per RTG in those evaluations")
    eval_rtgs: tuple[float, ...] = _knob((-1.0, 0.0, 0.9), "RTGs of those evaluations")
    eval_seed: int = _knob(1_000_003, "seed of those evaluations")
    fused_adamw: bool = _knob(
        True, "fused AdamW kernel (faster; other float rounding than the default, so other weight bytes)"
    )
    exclude_outcome: str = _knob(
        "",
        "train only on episodes that did not end this way (goal, collision or timeout): a data break the gate "
        "must catch (empty: all episodes)",
    )
    frozen_head: str = _knob(
        "",
        "an attention head kept at its initial weights, e.g. L0H1 (a deliberate break the gate must catch; "
        "empty: none)",
    )
    iit_component: str = _knob(
        "",
        "plant 'ball in front' in this component by interchange intervention training (training/iit.py): L0H0, "
        "L0H1 or mlp, or a head's direct path to the logits, L0H0-direct or L0H1-direct (empty: none, today's "
        "recipe)",
        choices=("", "L0H0", "L0H1", "mlp", "L0H0-direct", "L0H1-direct"),
    )
    iit_weight: float = _knob(1.0, "weight of the IIT term (the planted component patched: the source's label)")
    siit_weight: float = _knob(1.0, "weight of SIIT's term (any other component patched: the base's own label)")
    iit_batch: int = _knob(64, "ball-in-front pairs per step for the IIT terms (each run in both directions)")
    iit_layouts: int = _knob(16, "seeded obstacle layouts the IIT pairs are drawn from (every pose each)")
    iit_rtgs: tuple[float, ...] = _knob((0.0, 0.9), "RTGs of the IIT pairs")
    iit_teacher: str = _knob(
        "", "checkpoint whose greedy actions label the IIT pairs (empty: the shipped one of the same encoding)"
    )

    def __post_init__(self) -> None:
        for name in ("batch_size", "steps", "threads", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train config {name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.prob_go_from_end <= 1:
            raise ConfigError(f"prob_go_from_end must be in [0, 1], got {self.prob_go_from_end}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError("lr must be > 0 and weight_decay >= 0")
        if self.lr_schedule not in ("constant", "cosine") or self.warmup_steps < 0:
            raise ConfigError(f"lr_schedule must be 'constant' or 'cosine' (got {self.lr_schedule!r}), warmup >= 0")
        if self.eval_every < 0 or self.eval_episodes < 1:
            raise ConfigError("eval_every must be >= 0 and eval_episodes >= 1")
        if self.exclude_outcome not in ("", "goal", "collision", "timeout"):
            raise ConfigError(
                f"exclude_outcome must be goal, collision, timeout or empty, got {self.exclude_outcome!r}"
            )
        if self.frozen_head:
            layer, head = self.frozen_layer_head()
            if not (0 <= layer < self.n_layers and 0 <= head < self.n_heads):
                raise ConfigError(
                    f"frozen_head {self.frozen_head!r} is not a head of a {self.n_layers}-layer, "
                    f"{self.n_heads}-head model"
                )
        if self.iit_component:
            if self.iit_component not in ("L0H0", "L0H1", "mlp", "L0H0-direct", "L0H1-direct"):
                raise ConfigError(
                    f"iit_component must be L0H0, L0H1, mlp, L0H0-direct, L0H1-direct or empty, "
                    f"got {self.iit_component!r}"
                )
            if self.iit_batch < 1 or self.iit_layouts < 1 or not self.iit_rtgs:
                raise ConfigError("iit_batch and iit_layouts must be >= 1 and iit_rtgs non-empty")
            if self.iit_weight < 0 or self.siit_weight < 0:
                raise ConfigError("iit_weight and siit_weight must be >= 0")

    def frozen_layer_head(self) -> tuple[int, int]:
        """(layer, head) of ``frozen_head`` ("L0H1" -> (0, 1))."""
        import re

        match = re.fullmatch(r"L(\d+)H(\d+)", self.frozen_head)
        if not match:
            raise ConfigError(f"frozen_head must look like L0H1, got {self.frozen_head!r}")
        return int(match.group(1)), int(match.group(2))

    def lr_at(self, step: int) -> float:
        """Learning rate for optimizer step ``step`` (1-based): constant, or warm-up then cosine to zero."""
        if self.lr_schedule == "constant":
            return self.lr
        if step <= self.warmup_steps:
            return self.lr * step / max(1, self.warmup_steps)
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def model_config(self, env: EnvSpec) -> DTConfig:
        """The DT shape; the time embedding gets max_steps + 1 rows (steps 0..max_steps)."""
        from dt_circuits.dt.model import DTConfig

        return DTConfig(
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_model=self.d_model,
            d_head=self.d_head,
            d_mlp=self.d_mlp,
            max_timestep=env.max_steps,
            obs_encoding=self.obs_encoding,  # type: ignore[arg-type]
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"], d["eval_rtgs"], d["iit_rtgs"] = list(self.betas), list(self.eval_rtgs), list(self.iit_rtgs)
        if not self.iit_component:  # without IIT the manifest's config stays what it was before these knobs
            for name in IIT_FIELDS:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown train config field(s): {', '.join(sorted(unknown))}")
        data = dict(data)
        for key in ("betas", "eval_rtgs", "iit_rtgs"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


#: the knobs of interchange intervention training (training/iit.py): absent from a manifest without IIT
IIT_FIELDS = ("iit_component", "iit_weight", "siit_weight", "iit_batch", "iit_layouts", "iit_rtgs", "iit_teacher")

#: Named sets of TrainConfig overrides (``dt-circuits gate --recipe NAME``), applied on top of a checkpoint's
#: recorded config; each is documented with its measurements in docs/training.md. ``fast`` is the committed
#: checkpoints' own recipe (the TrainConfig defaults): 5000 steps at batch 256 (1.28M samples), lr 1.5e-3
#: with 200 warm-up steps, fused AdamW, one torch thread, only the final in-run evaluation; a whole retrain is
#: ~60 s on the project's 2-core machine. ``long`` is the recipe of the checkpoints before it: 40k steps at
#: batch 128 (5.1M samples), unfused AdamW, two threads, an in-run evaluation every 10k steps (~400-560 s).
RECIPES: dict[str, dict[str, Any]] = {
    # the checkpoint's own recorded config, nothing overridden
    "committed": {},
    "fast": {
        "batch_size": 256,
        "steps": 5000,
        "lr": 0.0015,
        "warmup_steps": 200,
        "fused_adamw": True,
        "threads": 1,
        "eval_every": 0,
    },
    "long": {
        "batch_size": 128,
        "steps": 40000,
        "lr": 0.001,
        "warmup_steps": 500,
        "fused_adamw": False,
        "threads": 2,
        "eval_every": 10000,
    },
}


def flag_of(name: str) -> str:
    """The command-line flag of a config field (``--batch-size``; ``--encoding`` for obs_encoding)."""
    f = next(f for f in fields(TrainConfig) if f.name == name)
    return f.metadata.get("flag") or "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """One flag per TrainConfig field, with its default and help text from the dataclass."""
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": f"{f.metadata['help']} (default "}
        if isinstance(default, tuple):
            kwargs.update(nargs=len(default) if f.name == "betas" else "+", type=float, metavar="X")
            kwargs["help"] += " ".join(f"{x:g}" for x in default) + ")"
        elif isinstance(default, bool):
            kwargs.update(type=_bool, metavar="true|false")
            kwargs["help"] += f"{str(default).lower()})"
        else:
            kwargs["type"] = type(default)
            kwargs["help"] += f"{default:g})" if isinstance(default, float) else f"{default})"
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag_of(f.name), **kwargs)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed flags describe."""
    return TrainConfig.from_dict({f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def config_flags(cfg: TrainConfig) -> list[str]:
    """Every config field spelled out as flags, so a recorded command reproduces the run exactly."""
    parts: list[str] = []
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if f.name in ("frozen_head", "exclude_outcome") and not value:
            continue  # a break, not a knob of ordinary runs: spelled out only when used
        if f.name in IIT_FIELDS and not cfg.iit_component:
            continue  # IIT's knobs are spelled out only when a variable is planted
        parts.append(flag_of(f.name))
        parts.extend(f"{v:g}" for v in value) if isinstance(value, tuple) else parts.append(_text(value))
    return parts


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def command_line(head: list[str], cfg: TrainConfig, tail: list[str] | None = None) -> str:
    """``head`` (program, data, out), every config flag, then ``tail`` (command-only options), shell-quoted."""
    return shlex.join([*head, *config_flags(cfg), *(tail or [])])
