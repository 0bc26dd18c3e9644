"""The hand-set ball avoiders are the known truth for the counterfactual recipe, so their two promises are pinned
here with raw TransformerLens hooks (no library recipe): the behaviour (P(forward) <= 0.05 with a ball in front,
>= 0.9 without, whatever else is in view) and the route (patching only the named component from the ball-removed
state restores forward)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.controls import swap_heads
from dt_circuits.dt.handset import ROUTES, RTG_ROUTES, ball_avoider, rtg_follower
from dt_circuits.dt.model import STATE_POS, DecisionTransformer
from dt_circuits.env.spec import COLOR, FRONT_VIEW_CELL, OBJECT, Action

FWD = int(Action.FORWARD)
EMPTY = (OBJECT["empty"], 0, 0)
BALL = (OBJECT["ball"], COLOR["blue"], 0)  # Dynamic Obstacles' balls are Minigrid's default blue
WALL = (OBJECT["wall"], COLOR["grey"], 0)
GOAL = (OBJECT["goal"], COLOR["green"], 0)
UNSEEN = (OBJECT["unseen"], 0, 0)
ENCODINGS = ("one_hot", "index")
RTGS = (-1.0, -0.3, 0.0, 0.5, 1.0)
TIMESTEPS = (0, 7, 30, 60)
#: component -> (hook name, index of its output at the state token)
COMPONENTS = {
    "L0H0": ("blocks.0.attn.hook_z", (slice(None), STATE_POS, 0)),
    "L0H1": ("blocks.0.attn.hook_z", (slice(None), STATE_POS, 1)),
    "mlp": ("blocks.0.hook_mlp_out", (slice(None), STATE_POS)),
}
ROUTE_COMPONENT = {"head0": "L0H0", "head1": "L0H1", "mlp": "mlp", "direct": None}


def states(front: tuple[int, int, int], n_views: int = 16, seed: int = 0):
    """Every combination of ``n_views`` random views (walls, balls, goal, unseen, empty anywhere but the front
    cell, which holds ``front``), RTGS and TIMESTEPS, as (obs, rtg, timestep)."""
    rng = np.random.default_rng(seed)
    palette = np.array([EMPTY, EMPTY, WALL, BALL, GOAL, UNSEEN], dtype=np.uint8)
    views = palette[rng.integers(0, len(palette), size=(n_views, 7, 7))]
    views[:, FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1]] = front
    v, r, t = np.meshgrid(np.arange(n_views), np.arange(len(RTGS)), np.arange(len(TIMESTEPS)), indexing="ij")
    return views[v.ravel()], np.asarray(RTGS, np.float32)[r.ravel()], np.asarray(TIMESTEPS)[t.ravel()]


def p_forward(model: DecisionTransformer, inputs, hooks=()) -> torch.Tensor:
    with torch.no_grad(), model.hooks(fwd_hooks=list(hooks)):
        return torch.softmax(model(*inputs), dim=-1)[:, FWD]


def patched_from(model: DecisionTransformer, corrupt, clean, component: str) -> torch.Tensor:
    """P(forward) on ``corrupt`` with ``component``'s state-token output taken from the same rows of ``clean``."""
    name, index = COMPONENTS[component]
    _, cache = model.run_with_cache(*clean, names_filter=name)

    def patch(act: torch.Tensor, hook) -> torch.Tensor:
        act[index] = cache[name][index]
        return act

    return p_forward(model, corrupt, [(name, patch)])


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("route", ROUTES)
def test_behaviour_is_ball_in_front_only(route, encoding):
    model = ball_avoider(route, encoding)
    ball, empty = states(BALL), states(EMPTY)
    assert p_forward(model, ball).max() <= 0.05
    assert p_forward(model, empty).min() >= 0.9
    with torch.no_grad():  # nothing but the front ball moves the logits: views, RTG and timestep do not
        for inputs in (ball, empty):
            logits = model(*inputs)
            torch.testing.assert_close(logits, logits[:1].expand_as(logits), rtol=0, atol=1e-5)
    if encoding == "one_hot":  # one-hot reads the "object is ball" bit: any other front object is "no ball"
        for front in (WALL, GOAL, UNSEEN):
            assert p_forward(model, states(front)).min() >= 0.9


@pytest.mark.parametrize("decoys", [False, True], ids=["plain", "decoys"])
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("route", ROUTES)
def test_only_the_route_carries_the_ball(route, encoding, decoys):
    model = ball_avoider(route, encoding, decoys=decoys)
    ball, clean = states(BALL), states(EMPTY)  # row i of clean is row i of ball with the front ball removed
    for component in COMPONENTS:
        p = patched_from(model, ball, clean, component)
        if component == ROUTE_COMPONENT[route]:
            assert p.min() >= 0.85, component
        else:
            assert p.max() <= 0.05, component
    # the input itself always carries it: patching the state embedding restores forward on every route
    _, cache = model.run_with_cache(*clean, names_filter="hook_state_embed")
    hook = ("hook_state_embed", lambda act, hook: cache["hook_state_embed"])
    assert p_forward(model, ball, [hook]).min() >= 0.85


@pytest.mark.parametrize("route", ROUTES)
def test_off_route_components_write_zero_or_a_constant_decoy(route):
    """Plain: components off the route write exactly 0. Decoys: a constant that zero-ablation removes (forward
    drops below 0.9) while the counterfactual patch keeps it: the case where the two recipes must disagree."""
    empty = states(EMPTY)
    off_route = [c for c in COMPONENTS if c != ROUTE_COMPONENT[route]]
    _, cache = ball_avoider(route).run_with_cache(*states(BALL))
    for component in off_route:
        name, index = COMPONENTS[component]
        assert cache[name][index].abs().max() == 0, component
    model = ball_avoider(route, decoys=True)
    for component in off_route:
        name, index = COMPONENTS[component]

        def zero(act: torch.Tensor, hook, index=index) -> torch.Tensor:
            act[index] = 0.0
            return act

        assert p_forward(model, empty, [(name, zero)]).max() < 0.9, component


def test_is_a_plain_decision_transformer_and_swapping_heads_moves_the_route():
    model = ball_avoider("head1")
    assert type(model) is DecisionTransformer and not model.training
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == model.cfg.param_shapes()
    assert list(model.hook_dict) == list(DecisionTransformer(model.cfg).hook_dict)
    swapped = swap_heads(model)
    ball, clean = states(BALL, n_views=4), states(EMPTY, n_views=4)
    assert patched_from(swapped, ball, clean, "L0H0").min() >= 0.85
    assert patched_from(swapped, ball, clean, "L0H1").max() <= 0.05


def test_unknown_route_or_encoding_is_one_config_error():
    with pytest.raises(ConfigError, match="unknown route"):
        ball_avoider("head2")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="obs_encoding"):
        ball_avoider("mlp", "rgb")  # type: ignore[arg-type]


def test_the_chain_route_behaves_the_same_through_head1_then_the_mlp():
    """ "head1-mlp": the same behaviour, the ball carried by L0H1 and by the MLP (each as a whole component), and
    nothing on L0H0; L0H1's write does not reach the logits by itself (the path claim's twin, tests/test_audit.py)."""
    model = ball_avoider("head1-mlp")
    ball, clean = states(BALL), states(EMPTY)
    assert p_forward(model, ball).max() <= 0.05 and p_forward(model, clean).min() >= 0.9
    assert patched_from(model, ball, clean, "L0H1").min() >= 0.85
    assert patched_from(model, ball, clean, "mlp").min() >= 0.85
    assert patched_from(model, ball, clean, "L0H0").max() <= 0.05


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_clear_polarity_twin_has_the_same_behaviour_and_carrier_but_zero_reads_as_ball(encoding):
    """``polarity="clear"``: head 1 writes "the front is clear" instead of "a ball". Same logits on every state,
    the same carrier (patching L0H1 from the ball-removed state restores forward, nothing else does), but zeroing
    L0H1 on a state with nothing in front makes the agent refuse forward as if a ball were there."""
    plain, clear = ball_avoider("head1", encoding), ball_avoider("head1", encoding, polarity="clear")
    ball, empty = states(BALL), states(EMPTY)
    with torch.no_grad():
        for inputs in (ball, empty):
            torch.testing.assert_close(clear(*inputs), plain(*inputs), rtol=0, atol=1e-5)
    assert patched_from(clear, ball, empty, "L0H1").min() >= 0.85
    assert patched_from(clear, ball, empty, "L0H0").max() <= 0.05
    name, index = COMPONENTS["L0H1"]

    def zero(act: torch.Tensor, hook) -> torch.Tensor:
        act[index] = 0.0
        return act

    assert p_forward(clear, empty, [(name, zero)]).max() <= 0.05  # reads as "ball"
    assert p_forward(plain, empty, [(name, zero)]).min() >= 0.9  # reads as "no ball"
    with pytest.raises(ConfigError, match="polarity"):
        ball_avoider("mlp", polarity="clear")


@pytest.mark.parametrize("decoys", [False, True], ids=["plain", "decoys"])
@pytest.mark.parametrize("route", RTG_ROUTES)
def test_the_rtg_follower_goes_forward_by_the_rtgs_sign_through_its_relay_head_only(route, decoys):
    """The RTG known truth (features' second interchanged variable): forward at a positive RTG, not at a negative
    one, whatever is in view; patching the relay head's state-token output from the other RTG flips the action,
    patching the other head's changes nothing."""
    model = rtg_follower(route, decoys=decoys)
    obs = torch.as_tensor(np.concatenate([states(front)[0] for front in (EMPTY, BALL, WALL, GOAL)]))
    t = torch.arange(len(obs)) % 60
    up, down = (obs, torch.full((len(obs),), 0.9), t), (obs, torch.full((len(obs),), -1.0), t)
    assert p_forward(model, up).min() >= 0.99 and p_forward(model, down).max() <= 0.01
    relay = f"L0H{route[-1]}"
    for component in ("L0H0", "L0H1"):
        p = patched_from(model, up, down, component)
        assert (p.max() <= 0.01) if component == relay else (p.min() >= 0.99), component


def test_an_unknown_rtg_route_is_one_line():
    with pytest.raises(ConfigError, match="unknown RTG route"):
        rtg_follower("mlp")
