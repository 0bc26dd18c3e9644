"""MiniGrid Memory as DTI registered it (``MiniGrid-MemoryS7FixedStart-v0``), and the article's state families.

DTI's ``get_memory_env_fixed_start`` builds Minigrid's ``MemoryEnv(size=7, random_length=False,
random_direction=False, random_start_pos=False)``: the agent always starts at (1, 3) facing right, the instruction
object (a green key or ball) is at (1, 2), the targets at (5, 1) and (5, 5); reaching the cell beside the matching
target pays ``1 - 0.9 * steps / max_steps``, the other one pays 0; both end the episode. DTI keeps ``pickup`` a real
pickup, where Minigrid 3.2's ``MemoryEnv.step`` turns it into ``toggle``. :class:`MemoryS7FixedStart` is
Minigrid's env with exactly those differences.

Episodes are capped at :data:`EVAL_MAX_STEPS` = 50, not the checkpoint's recorded 1000: DTI evaluated the model
during training at ``offline_config.eval_max_time_steps`` 50, the article's best RTG 0.892 = 1 - 0.9 * 6 / 50 is
the optimal reward at 50 steps, and the time embedding's rows from 50 on still have their initialisation norm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from minigrid.core.world_object import Ball, Key
from minigrid.envs import MemoryEnv
from minigrid.minigrid_env import MiniGridEnv

from dt_circuits.core.errors import InvalidStateError

EVAL_MAX_STEPS = 50
START_POS = (1, 3)
#: Memory's seven actions (Minigrid's full action set; the DT predicts all seven).
ACTIONS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
LEFT, RIGHT, FORWARD = 0, 1, 2
Item = Literal["key", "ball"]
_ITEM = {"key": Key, "ball": Ball}

#: View cells (agent at (3, 6) facing up) where the article sees the instruction: "Start -> (2,6), Look-Back ->
#: (4,2) (4,3), Early Turn 1, 2 -> (1,5), (0,5)"; its PCA uses keys/balls at these four.
INSTRUCTION_CELLS: tuple[tuple[int, int], ...] = ((4, 2), (4, 3), (0, 5), (2, 6))
#: The instruction in the first frame: "directly to the left of the agent in the first timestep".
INSTRUCTION_VIEW_CELL = (2, 6)
#: Targets "as seen from the start" (1,2), (5,2) and "from the end-of-corridor" (1,6), (5,6).
TARGET_CELLS: tuple[tuple[int, int], ...] = ((1, 2), (5, 2), (1, 6), (5, 6))
#: Where the article adds complement objects ("decoys") to the first frame: (0,5) and (4,2).
COMPLEMENT_CELLS: tuple[tuple[int, int], ...] = ((0, 5), (4, 2))


def complement(item: Item) -> Item:
    """The other instruction object: "if the original instruction was a key, add a ball to reverse it"."""
    return "ball" if item == "key" else "key"


class MemoryS7FixedStart(MemoryEnv):
    """Minigrid's MemoryEnv at size 7 with DTI's settings: fixed start (1, 3) facing right, real pickup.

    ``reset(options={"instruction": "key"|"ball", "top": "key"|"ball"})`` fixes the layout (either may be left
    out: drawn by the env's RNG as usual).
    """

    def __init__(self, max_steps: int = EVAL_MAX_STEPS, **kwargs: Any) -> None:
        self._layout: dict[str, str] = {}
        super().__init__(size=7, random_length=False, max_steps=max_steps, **kwargs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        layout = dict(options or {})
        for key in ("instruction", "top"):
            if key in layout and layout[key] not in _ITEM:
                raise InvalidStateError(f"Memory option {key}={layout[key]!r}: expected 'key' or 'ball'")
        self._layout = layout
        return super().reset(seed=seed, options=options)

    def _gen_grid(self, width: int, height: int) -> None:
        super()._gen_grid(width, height)
        self.agent_pos = np.array(START_POS)  # DTI: random_start_pos=False (Minigrid draws x in 1..4)
        self.agent_dir = 0
        mid = height // 2
        if "instruction" in self._layout:
            self.grid.set(1, mid - 1, _ITEM[self._layout["instruction"]]("green"))
        if "top" in self._layout:
            top = self._layout["top"]
            self.grid.set(5, mid - 2, _ITEM[top]("green"))
            self.grid.set(5, mid + 2, _ITEM[complement(top)]("green"))  # type: ignore[arg-type]
        top_matches = self.grid.get(1, mid - 1).type == self.grid.get(5, mid - 2).type
        above, below = (5, mid - 1), (5, mid + 1)
        self.success_pos, self.failure_pos = (above, below) if top_matches else (below, above)

    @property
    def instruction(self) -> str:
        return self.grid.get(1, self.height // 2 - 1).type

    @property
    def top(self) -> str:
        return self.grid.get(5, self.height // 2 - 2).type

    def step(self, action: int) -> Any:
        # Minigrid's MemoryEnv.step maps pickup to toggle; DTI's does not, so go to MiniGridEnv.step directly.
        obs, reward, terminated, truncated, info = MiniGridEnv.step(self, action)
        pos = tuple(int(v) for v in self.agent_pos)
        outcome = "timeout" if truncated else None
        if pos == tuple(self.success_pos):
            reward, terminated, outcome = self._reward(), True, "success"
        elif pos == tuple(self.failure_pos):
            reward, terminated, outcome = 0.0, True, "wrong"
        return obs, reward, terminated, truncated, {**info, "outcome": outcome if terminated or truncated else None}


@dataclass(frozen=True)
class MemoryScenario:
    """The real frames of one episode prefix: index obs (T, 7, 7, 3), the T - 1 actions taken, timesteps 0..T-1."""

    instruction: str
    top: str
    obs: np.ndarray
    actions: np.ndarray
    timesteps: np.ndarray
    correct_turn: str  # "left" (the matching target is at the top) or "right"

    @property
    def label(self) -> str:
        return f"instruction {self.instruction}, top {self.top}"


def walked_forward(instruction: Item, top: Item, n_forward: int = 4) -> MemoryScenario:
    """The article's modal state: "the model has walked forward 4 times and is choosing between left / right"."""
    env = MemoryS7FixedStart()
    obs, _ = env.reset(seed=0, options={"instruction": instruction, "top": top})
    frames = [obs["image"]]
    for _ in range(n_forward):
        obs, _, terminated, truncated, _ = env.step(FORWARD)
        if terminated or truncated:
            raise InvalidStateError(f"walking forward {n_forward} times ends the episode")
        frames.append(obs["image"])
    n = len(frames)
    return MemoryScenario(
        instruction,
        top,
        np.stack(frames).astype(np.uint8),
        np.full(n - 1, FORWARD, dtype=np.int64),
        np.arange(n, dtype=np.int64),
        "left" if tuple(env.success_pos) == (5, 2) else "right",
    )


def modal_scenarios() -> list[MemoryScenario]:
    """The modal state for each of the four layouts (instruction key/ball x top target key/ball)."""
    return [walked_forward(i, t) for i in ("key", "ball") for t in ("key", "ball")]  # type: ignore[arg-type]
