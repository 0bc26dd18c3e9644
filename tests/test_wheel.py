"""The package as a stranger gets it: a wheel installed into a fresh venv, used from a repo made by `init`.

Nothing here runs from the checkout. The wheel is built from this tree, installed without dependencies into a
new venv that borrows the heavy dependencies (torch, TransformerLens, minigrid) from the test environment's
site-packages as a plain path entry, so this venv's own dt-circuits (the wheel) is the one imported. Then:
`dt-circuits init`, plain `pytest` in the new repo (the pytest11 plugin collects its claim), the same claim
through the CLI, the shipped claims on the shipped checkpoints, and the errors for an empty claims folder.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from dt_circuits.core.paths import REPO_ROOT

#: one worker builds and installs the wheel once (~4 s) for every test here
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(bin dir of a fresh venv with the built wheel installed, an environment to run it in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: building writes build/ and egg-info beside the sources, never into the checkout
    shutil.copytree(
        REPO_ROOT, src,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
                                      ".hypothesis", ".benchmarks", "out", "reports"),
    )  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp), str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp.glob("dt_circuits-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # the test environment's packages, after the venv's own (a plain path: its .pth files, among them the
    # editable install of this checkout, are not processed)
    borrowed = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "borrowed-deps.pth").write_text("\n".join(borrowed) + "\n")
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert inst.returncode == 0, inst.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["DT_CIRCUITS_SHARED"] = str(tmp / "no-shared")  # a stranger has no ../shared
    where = _run([str(py), "-c", "import dt_circuits, sys; print(dt_circuits.__file__)"], tmp, env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(purelib), f"imported {where.stdout} instead of the wheel"
    return venv / "bin", env


def test_init_then_pytest_runs_the_users_claim_with_the_plugin(installed, tmp_path: Path) -> None:
    bindir, env = installed
    init = _run([str(bindir / "dt-circuits"), "init", "repo"], tmp_path, env)
    assert init.returncode == 0, init.stderr
    repo = tmp_path / "repo"
    for f in ("claims/walls_avoided.py", "roles.json", "pytest.ini", ".github/workflows/dt-circuits.yml"):
        assert (repo / f).is_file(), f
    again = _run([str(bindir / "dt-circuits"), "init", "repo"], tmp_path, env)
    assert again.returncode == 2 and "already exists" in again.stderr and len(again.stderr.splitlines()) == 1

    result = _run([str(bindir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], repo, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout  # one claim x the two shipped checkpoints
    assert "walls-avoided-high-rtg" in result.stdout  # the plugin's claims summary

    out = tmp_path / "cli.json"
    cli = _run(
        [str(bindir / "dt-circuits"), "claims", "--claims-dir", "claims", "--checkpoint",
         _shipped(bindir, env, "raw-index"), "--json", str(out), "--no-search"],
        repo, env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    data = json.loads(out.read_text())
    assert [c["id"] for c in data["claims"]] == ["walls-avoided-high-rtg"]
    assert data["claims"][0]["verdict"] == "holds"


def _shipped(bindir: Path, env: dict[str, str], name: str) -> str:
    code = f"from dt_circuits.core.paths import CHECKPOINTS_DIR; print(CHECKPOINTS_DIR / {name!r})"
    return _run([str(bindir / "python"), "-c", code], Path("/"), env).stdout.strip()


def test_the_wheel_ships_every_claim_and_checkpoint_of_the_checkout(installed) -> None:
    bindir, env = installed
    code = (
        "from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR as c, CHECKPOINTS_DIR as k; "
        "print(sorted(p.name for p in c.glob('*.py'))); print(sorted(p.name for p in c.glob('expectations/*.json'))); "
        "print(sorted(str(p.relative_to(k)) for p in k.rglob('*') if p.is_file())); "
        "from dt_circuits.env.walks import stale_shipped; print(stale_shipped()); "
        "print(sorted(str(p.relative_to(c)) for p in c.glob('saes/*/*')))"
    )
    shipped = _run([str(bindir / "python"), "-c", code], Path("/"), env).stdout.splitlines()
    here_claims = REPO_ROOT / "claims"  # the top of the checkout, as the design card lays it out
    here_ckpts = REPO_ROOT / "checkpoints"
    # the wheel carries them inside the package (one copy of each file in the repository, mapped by setuptools)
    assert Path(_shipped(bindir, env, "raw-index")).parts[-3:] == ("dt_circuits", "shipped_checkpoints", "raw-index")
    assert shipped[0] == str(sorted(p.name for p in here_claims.glob("*.py")))
    assert shipped[1] == str(sorted(p.name for p in here_claims.glob("expectations/*.json")))
    # every shipped checkpoint's files; checkpoints/audit (the auditing game's planted models, read from a checkout
    # by `dt-circuits audit`, several MB) stays out of the wheel
    ours = sorted(
        str(p.relative_to(here_ckpts)) for p in here_ckpts.rglob("*") if p.is_file() and p.parent.parent == here_ckpts
    )
    assert shipped[2] == str(ours)
    assert shipped[3] == "[]", "the wheel lacks the shipped walks (dt_circuits/env/walk_data)"
    assert shipped[4] == str(sorted(str(p.relative_to(here_claims)) for p in here_claims.glob("saes/*/*")))
    assert "sae.safetensors" in shipped[4], "the wheel lacks the shipped claims' SAEs (claims/saes)"


def test_shipped_claims_run_on_shipped_checkpoints_outside_the_repo(installed, tmp_path: Path) -> None:
    """The main-job command from a folder that is not a checkout (two claims: the full run is the claims items)."""
    bindir, env = installed
    claims = _run(
        [str(bindir / "dt-circuits"), "claims", "--no-search", "--only", "rtg-embedding-forward",
         "wall-detection-embedding", "--report", "report"],
        tmp_path, env,
    )  # fmt: skip
    assert claims.returncode == 0, claims.stdout + claims.stderr
    assert "== raw-index" in claims.stdout and "== one-hot" in claims.stdout
    assert (tmp_path / "report" / "raw-index" / "index.html").is_file()
    assert (tmp_path / "report" / "one-hot" / "index.html").is_file()


def test_an_empty_claims_folder_is_an_error_never_a_pass(installed, tmp_path: Path) -> None:
    bindir, env = installed
    (tmp_path / "claims").mkdir()
    cli = _run([str(bindir / "dt-circuits"), "claims", "--claims-dir", "claims"], tmp_path, env)
    assert cli.returncode == 2 and "no claim files" in cli.stderr, cli.stdout + cli.stderr
    plain = _run([str(bindir / "python"), "-m", "pytest", "-q", "--claims-dir", "claims"], tmp_path, env)
    assert plain.returncode != 0 and "no claim files" in plain.stdout + plain.stderr
