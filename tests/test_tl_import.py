"""TransformerLens through ``dt_circuits.dt.tl``: no Hugging Face stack in a claims process, and the package a user
imports afterwards is TransformerLens as its authors wrote it (each case in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: what a package looks like from outside: each public name and the kind of thing bound to it
DESCRIBE = textwrap.dedent(
    """
    import json, sys, types

    def describe(module):
        out = {}
        for name in dir(module):
            if name.startswith("_"):
                continue
            value = getattr(module, name)
            kind = type(value).__name__
            if isinstance(value, types.ModuleType):
                kind = "module " + value.__name__
            elif isinstance(value, type):
                kind = "class " + value.__module__ + "." + value.__qualname__
            out[name] = kind
        return out

    def packages():
        import transformer_lens
        import transformer_lens.conversion_utils
        import transformer_lens.utilities

        return {m.__name__: describe(m) for m in (transformer_lens, transformer_lens.utilities,
                                                  transformer_lens.conversion_utils)}
    """
)

HEAVY = ("transformers", "datasets", "pandas", "pyarrow")


def _run(body: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", DESCRIBE + textwrap.dedent(body)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_model_runs_without_the_hugging_face_stack_and_tl_is_whole_afterwards():
    ours = _run(
        f"""
        import torch
        from dt_circuits.dt.config import DTConfig
        from dt_circuits.dt.model import DecisionTransformer
        from dt_circuits.dt import tl

        model = DecisionTransformer(DTConfig(n_layers=1, n_heads=2, d_model=16, d_head=8, d_mlp=16))
        model.init_weights(0)
        obs = torch.ones(3, 7, 7, 3, dtype=torch.long)
        logits, cache = model.run_with_cache(obs, torch.zeros(3), torch.zeros(3, dtype=torch.long))
        heavy_after_a_forward = sorted(m for m in {HEAVY!r} if m in sys.modules)
        deferred = type(sys.modules["transformer_lens"]).__name__

        # a name the __init__ binds by a plain import (HookedRootModule's `from transformer_lens.utilities import
        # Slice`) comes from that submodule alone; dir() is the whole package, so it runs utilities' __init__
        import transformer_lens.utilities as utils
        from transformer_lens.utilities.slice import Slice
        state = utils.__dict__["__dt_circuits_deferred_init__"]
        slice_alone = [utils.Slice is Slice, state["ran"]]
        has_get_device = "get_device" in dir(utils)
        slice_alone.append(state["ran"] and has_get_device)

        import transformer_lens
        import transformer_lens.hook_points
        same = [transformer_lens.HookedRootModule is tl.HookedRootModule,
                transformer_lens.ActivationCache is tl.ActivationCache is type(cache),
                transformer_lens.FactoredMatrix is tl.FactoredMatrix,
                transformer_lens.hook_points.HookPoint is tl.HookPoint]
        try:  # a name only the package __init__ knows (its module __getattr__): the whole __init__ runs
            from transformer_lens import HookedTransformer  # noqa: F401
            removed = "imported"
        except ImportError as e:
            removed = str(e)
        print(json.dumps({{"heavy": heavy_after_a_forward, "deferred": deferred, "same": same,
                          "slice_alone": slice_alone,
                          "removed": removed, "packages": packages(),
                          "heavy_at_end": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
        """
    )
    assert ours["heavy"] == [], f"a forward imported {ours['heavy']}: the lean import regressed"
    assert ours["deferred"] == "DeferredInitPackage"
    assert all(ours["same"]), ours["same"]
    assert ours["slice_alone"] == [True, False, True], ours["slice_alone"]
    assert "was removed in TransformerLens 4.0" in ours["removed"], ours["removed"]
    assert ours["heavy_at_end"], "the whole package's __init__ never ran"

    # the same package, name for name, as a process that imports TransformerLens the usual way first
    theirs = _run(
        """
        import transformer_lens
        from dt_circuits.dt import tl

        print(json.dumps({"plain": type(sys.modules["transformer_lens"]).__name__, "packages": packages(),
                          "same": tl.HookedRootModule is transformer_lens.HookedRootModule}))
        """
    )
    assert theirs["plain"] == "module" and theirs["same"], theirs
    for package, names in theirs["packages"].items():
        ours_names = ours["packages"][package]
        assert ours_names == names, (
            package,
            {n: (ours_names.get(n), names.get(n)) for n in set(ours_names) | set(names)
             if ours_names.get(n) != names.get(n)},
        )  # fmt: skip
