"""kong/Dockerfile's final stage, laid out under a scratch directory instead of ``/``.

``install`` copies what each ``COPY`` copies to ``<root><dest>``, links the venv the build stage
creates to this interpreter's venv (the same project, installed), runs the final stage's ``RUN`` lines
that are not package installs (re-rooted), and returns the image's ``ENV`` with the paths of the
settings the local gateway reads re-rooted. Nothing else changes: the plugin server is then started
with exactly the Dockerfile's ``START_CMD`` and ``QUERY_CMD`` arguments, under ``<root>``."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .dockerfile import Dockerfile

ROOT = Path(__file__).resolve().parents[2]
KONG_DEFAULT_PREFIX = "/usr/local/kong"
_ABS = re.compile(r"(?<![\w./:$-])/(?=[\w])")
_PATH_KEYS = ("KONG_DECLARATIVE_CONFIG", "KONG_LUA_PACKAGE_PATH", "KONG_PREFIX")


def reroot(value: str, root: Path) -> str:
    """Every absolute path in ``value`` moved under ``root`` (URLs are left alone)."""
    return _ABS.sub(lambda _m: f"{root}/", value)


def venv_of(df: Dockerfile) -> str:
    """The venv the build stage creates (``python3 -m venv <dir>``)."""
    for ins in df.stages[0].all("RUN"):
        m = re.search(r"python3? -m venv (\S+)", ins.args)
        if m:
            return m[1]
    raise AssertionError("the build stage creates no venv")


def install(df: Dockerfile, root: Path) -> dict[str, str]:
    final = df.final
    venv = venv_of(df)
    for source_stage, sources, dest in final.copies():
        if source_stage is not None:
            assert sources == [venv] and dest == venv, (sources, dest)
            target = Path(reroot(dest, root))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(sys.prefix, target_is_directory=True)
            continue
        for source in sources:
            src = ROOT / source
            target = Path(reroot(dest, root))
            if src.is_dir():
                shutil.copytree(src, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target / src.name if dest.endswith("/") else target)
    for ins in final.all("RUN"):
        if ins.args.startswith("apt-get"):
            continue
        subprocess.run(["/bin/sh", "-c", reroot(ins.args, root)], check=True)
    Path(reroot(KONG_DEFAULT_PREFIX, root)).mkdir(parents=True, exist_ok=True)
    env = final.env()
    for key, value in env.items():
        if key in _PATH_KEYS or key.startswith("KONG_PLUGINSERVER_"):
            env[key] = reroot(value, root)
    return env


def start_words(env: dict[str, str]) -> list[str]:
    return shlex.split(env["KONG_PLUGINSERVER_AWS_MASKER_START_CMD"])
