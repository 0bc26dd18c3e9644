"""Hand-set "known truth" models: one-timestep DTs whose ball-avoidance circuit is known by construction.

A recipe that claims to locate a mechanism (the ``counterfactual`` patch: a component's output at the state token
taken from the same state with the ball in front removed) can only be trusted if it finds the mechanism where we
*know* it is. Trained models do not tell us that, so these models are built, not trained: every weight is set by
hand, and the fact "a ball is in the front cell" reaches the logits through exactly one named route:

- ``"head0"`` / ``"head1"``: attention head L0H0 / L0H1 (it attends from the state token to itself and its OV
  copies the ball feature into a "don't go forward" direction);
- ``"mlp"``: the MLP (one ReLU neuron reads the ball feature and writes "don't go forward");
- ``"direct"``: the state embedding writes "don't go forward" itself, straight into the unembedding;
- ``"head1-mlp"`` (a chain, for path claims): head L0H1 copies the ball feature into a direction the unembedding
  does not read, and the MLP turns it into "don't go forward". L0H1 carries the ball as a whole component, but
  not along its direct path to the logits: the twin of ``"head1"`` for a claim about that path.

``polarity="clear"`` (head routes only) inverts what the route head writes: "the front is clear" (1 − ball)
as a push toward forward, with the bias carrying the rest, instead of "a ball" as a push away. The same behaviour
and the same carrier, but a head whose output is *zero when a ball is in front*: zero-ablating it reads as "ball",
so the zero recipe cannot show that it carries the ball (the auditing game's finding; issue 28), while the mean
and counterfactual recipes can.

Every route gives the same behaviour: forward logit ``4`` without a ball in front and ``-4`` with one (left and
right logits 0), so P(forward) is 0.965 and 0.009 for any RTG, any timestep and any other view content. Components
off the route output exactly zero, or, with ``decoys=True``, a constant (ball-independent) push toward forward
that the behaviour needs: zero-ablating a decoy changes P(forward), the counterfactual patch of it does not.

The result is a plain :class:`DecisionTransformer` (no LayerNorm, 1 layer, 2 heads), so every tool of the package
runs on it unchanged.

A second variable, the RTG, has its own known-truth model (:func:`rtg_follower`): the RTG lives on the RTG token,
and one named head moves it to the state token, where the action is read. A tool that localises a variable
must find the RTG's sign in that head and in neither the other head nor the state token's input.
"""

from __future__ import annotations

from typing import Literal

import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.config import RTG_POS, STATE_POS, DTConfig, ObsEncoding
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT, Action

Route = Literal["head0", "head1", "mlp", "direct", "head1-mlp"]
#: the single-component routes (exactly one component carries the ball)
ROUTES: tuple[str, ...] = ("head0", "head1", "mlp", "direct")
#: routes through two components in a row
CHAIN_ROUTES: tuple[str, ...] = ("head1-mlp",)

#: Residual-stream directions (basis dimensions of d_model); everything else stays zero.
BALL = 0  # "a ball is in the front cell" (0 or 1), written by the state embedding for the routed variants
AVOID = 1  # "don't go forward": the only direction through which the ball reaches the logits
ONE = 2  # constant 1 at the state token (W_pos), 0 at the RTG token: what attention keys on
GO = 3  # "go forward", written by the decoys with a constant
RTG = 4  # the RTG, carried on the RTG token and read by nothing
TIME = 5  # timestep / max_timestep, carried on both tokens and read by nothing
MID = 6  # the chain route's "ball" as head 1 writes it for the MLP: not read by the unembedding
MARK = 7  # constant 1 at the RTG token (W_pos): what the RTG relay head's key reads
RELAY = 8  # the RTG as the relay head writes it at the state token: read by the forward logit

#: Shape: 1 layer, 2 heads, no LayerNorm (the post's architecture), small widths.
HANDSET_SHAPE = dict(n_layers=1, n_heads=2, d_model=16, d_head=4, d_mlp=4, n_ctx=2, max_timestep=1000)
#: Forward logit without a ball in front (left, right: 0): P(forward) = e^4 / (e^4 + 2) = 0.965.
GO_LOGIT = 4.0
#: What a ball in front subtracts from the forward logit: 4 - 8 = -4, P(forward) = 0.009.
AVOID_LOGIT = 8.0
#: Each decoy's constant contribution to the forward logit (b_U gives back the rest, so the total stays GO_LOGIT).
DECOY_LOGIT = 3.0
#: Query and key weight on ONE: score 8 * 8 / sqrt(d_head) = 32 for the state token, 0 for the RTG token, so
#: attention from the state token puts 1 - e^-32 of its weight on itself.
SELF_ATTENTION = 8.0


Polarity = Literal["ball", "clear"]
POLARITIES: tuple[str, ...] = ("ball", "clear")


def ball_avoider(
    route: Route, encoding: ObsEncoding = "one_hot", *, decoys: bool = False, polarity: Polarity = "ball"
) -> DecisionTransformer:
    """A DT that refuses to walk into a ball, with "ball in front" carried only by ``route`` (see the module doc).

    One-hot encoding reads the front cell's "object is ball" bit, exact for any front content. Raw-index encoding
    can only be linear in the (object, colour, state) indices, and a ball (6, 2) lies inside the triangle of empty
    (1, 0), wall (2, 5) and goal (8, 1), so no linear read-out separates it: the index model reads
    ``(object - 1) / 5`` of the front cell, which is exactly 0 for an empty front and 1 for a ball. **With index
    encoding the front cell must be empty or a ball**; anything else there is outside the construction (a wall
    reads as 0.2 of a ball, P(forward) 0.85; a goal as 1.4, P(forward) < 0.001).

    ``decoys=True`` makes every component off the route write a constant push toward forward (see the module doc),
    so zero-ablation and the counterfactual patch disagree about it; behaviour and route are unchanged.
    ``polarity="clear"`` (head routes) makes the route head write "the front is clear" instead of "a ball".
    """
    if route not in ROUTES + CHAIN_ROUTES:
        raise ConfigError(f"unknown route {route!r}; expected one of {', '.join(ROUTES + CHAIN_ROUTES)}")
    if polarity not in POLARITIES or (polarity == "clear" and route not in ("head0", "head1")):
        raise ConfigError(f"polarity {polarity!r} needs a head route (head0, head1) and is one of ball, clear")
    model = _blank(encoding)  # validates the encoding
    cfg = model.cfg
    attn, mlp = model.blocks[0].attn, model.blocks[0].mlp
    fwd = int(Action.FORWARD)
    with torch.no_grad():
        # -- embeddings: the ball feature (the constant, RTG and time are _blank's)
        _embed_ball_in_front(model, AVOID if route == "direct" else BALL)
        # -- attention: both heads attend from the state token to itself (their patterns are legitimate); only
        # the route head has an OV circuit, BALL -> AVOID
        attn.W_Q[:, ONE, 0] = SELF_ATTENTION
        attn.W_K[:, ONE, 0] = SELF_ATTENTION
        for head in range(cfg.n_heads):
            if route == f"head{head}" and polarity == "ball":
                attn.W_V[head, BALL, 0] = 1.0
                attn.W_O[head, 0, AVOID] = 1.0
            elif route == f"head{head}":  # "clear" = ONE - BALL, written as minus AVOID (toward forward)
                attn.W_V[head, ONE, 0] = 1.0
                attn.W_V[head, BALL, 0] = -1.0
                attn.W_O[head, 0, AVOID] = -1.0
        if route == "head1-mlp":  # head 1 writes the ball into MID, which only the MLP reads
            attn.W_V[1, BALL, 0] = 1.0
            attn.W_O[1, 0, MID] = 1.0
        # -- MLP: neuron 0 is relu(BALL) -> AVOID on the "mlp" route (BALL is 0 or 1, so relu is the identity)
        if route in ("mlp", "head1-mlp"):
            mlp.W_in[BALL if route == "mlp" else MID, 0] = 1.0
            mlp.W_out[0, AVOID] = 1.0
        # -- decoys: each component off the route writes a constant DECOY_LOGIT into GO (heads: V reads ONE, which
        # is 1 at the state token they attend to; MLP: neuron 1 reads ONE)
        n_decoys = 0
        if decoys:
            route_heads = {1} if route == "head1-mlp" else {h for h in range(cfg.n_heads) if route == f"head{h}"}
            for head in range(cfg.n_heads):
                if head not in route_heads:
                    attn.W_V[head, ONE, 1] = 1.0
                    attn.W_O[head, 1, GO] = DECOY_LOGIT
                    n_decoys += 1
            if route not in ("mlp", "head1-mlp"):
                mlp.W_in[ONE, 1] = 1.0
                mlp.W_out[1, GO] = DECOY_LOGIT
                n_decoys += 1
        # -- unembedding: forward = GO_LOGIT - AVOID_LOGIT * ball; left and right stay 0
        model.W_U[AVOID, fwd] = -AVOID_LOGIT
        model.W_U[GO, fwd] = 1.0
        model.b_U[fwd] = GO_LOGIT - DECOY_LOGIT * n_decoys - (AVOID_LOGIT if polarity == "clear" else 0.0)
    return _frozen(model)


def _blank(encoding: ObsEncoding) -> DecisionTransformer:
    """The hand-set shape with every weight 0 but what all of these models share: the constant ONE at the state
    token, the RTG in RTG on the RTG token, timestep / max_timestep in TIME on both."""
    model = DecisionTransformer(DTConfig(**HANDSET_SHAPE, obs_encoding=encoding))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.W_pos[STATE_POS, ONE] = 1.0
        model.W_rtg[RTG] = 1.0
        model.W_time[:, TIME] = torch.arange(model.cfg.max_timestep + 1) / model.cfg.max_timestep
    return model


def _frozen(model: DecisionTransformer) -> DecisionTransformer:
    """A built model as every tool receives it: no gradients, eval mode."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def _embed_ball_in_front(model: DecisionTransformer, dim: int) -> None:
    """Make the state token's ``dim`` exactly 1 with a ball in the front cell and 0 without (see ball_avoider)."""
    x, y = FRONT_VIEW_CELL
    cell = x * 7 + y  # encode_obs flattens as (channel, x, y)
    if model.cfg.obs_encoding == "one_hot":  # the "object is ball" bit of the front cell
        model.W_state[OBJECT["ball"] * 49 + cell, dim] = 1.0
        return
    # index: (object - empty) / (ball - empty), read from channel 0 (object); the offset comes in through W_pos
    span = OBJECT["ball"] - OBJECT["empty"]
    model.W_state[cell, dim] = 1.0 / span
    model.W_pos[STATE_POS, dim] = -OBJECT["empty"] / span


#: :func:`rtg_follower`'s forward logit per unit of RTG (left, right: 0): at RTG 0.9 forward (7.2), at RTG −1
#: not (−8; argmax left), whatever the view.
RTG_FORWARD_LOGIT = 8.0
#: :func:`rtg_follower`'s relay heads (the other head attends to the state token itself and moves nothing)
RTG_ROUTES: tuple[str, ...] = ("head0", "head1")


def rtg_follower(route: str, *, decoys: bool = False) -> DecisionTransformer:
    """A DT that goes forward at a positive RTG and not at a negative one, whatever it sees, with the RTG moved
    from the RTG token to the state token only by head ``route`` ("head0" / "head1"): its query (the state
    token's constant) meets the key of the RTG token's marker (score 32 against 0 for itself), and its OV copies
    the RTG into the direction the forward logit reads. The other head attends to the state token and moves
    nothing (``decoys=True``: a constant push toward forward, given back by ``b_U``). Forward logit
    ``RTG_FORWARD_LOGIT · RTG``; nothing at the state token before attention depends on the RTG."""
    if route not in RTG_ROUTES:
        raise ConfigError(f"unknown RTG route {route!r}; expected one of {', '.join(RTG_ROUTES)}")
    relay = int(route[-1])
    model = _blank("one_hot")
    cfg = model.cfg
    attn = model.blocks[0].attn
    fwd = int(Action.FORWARD)
    with torch.no_grad():
        model.W_pos[RTG_POS, MARK] = 1.0
        for head in range(cfg.n_heads):
            attn.W_Q[head, ONE, 0] = SELF_ATTENTION
            attn.W_K[head, MARK if head == relay else ONE, 0] = SELF_ATTENTION
        attn.W_V[relay, RTG, 0] = 1.0
        attn.W_O[relay, 0, RELAY] = 1.0
        other = 1 - relay
        if decoys:
            attn.W_V[other, ONE, 1] = 1.0
            attn.W_O[other, 1, GO] = DECOY_LOGIT
        model.W_U[RELAY, fwd] = RTG_FORWARD_LOGIT
        model.W_U[GO, fwd] = 1.0
        model.b_U[fwd] = -DECOY_LOGIT if decoys else 0.0
    return _frozen(model)
