"""The install resolves on every platform Keras runs on: Linux x86-64 and aarch64, macOS arm64, Windows x86-64 (Python 3.11).

pip evaluates environment markers against the running interpreter, not `--platform`, so each platform's markers are
evaluated here (`packaging.markers`, with that platform's environment) and pip is asked only for the requirements that
apply there, one `pip install --dry-run --no-deps` per platform with binary wheels only: metadata, no wheel downloaded
(about 15 s a platform with the package index reachable). A platform that stops resolving fails this test. The `jax`
extra is resolved on each platform too (the JAX backend, or the README's JAX-only route).
"""
import configparser
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

def _cfg():
    config = configparser.ConfigParser(delimiters=["="])
    config.read(ROOT / "settings.ini", encoding="utf-8")
    return config["DEFAULT"]

def _env(sys_platform, platform_system, machine, os_name):
    "A PEP 508 marker environment for CPython 3.11 on one platform."
    return dict(sys_platform=sys_platform, platform_system=platform_system, platform_machine=machine, os_name=os_name,
                python_version="3.11", python_full_version="3.11.9", implementation_name="cpython",
                platform_python_implementation="CPython", implementation_version="3.11.9", platform_release="", platform_version="",
                extra="")

# name: (marker environment, pip --platform tags (pip expands a macOS version to older ones, not a manylinux one), expected TF)
PLATFORMS = {
    "linux-x86_64": (_env("linux", "Linux", "x86_64", "posix"), ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"], "tensorflow-cpu"),
    "linux-aarch64": (_env("linux", "Linux", "aarch64", "posix"), ["manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"], "tensorflow"),
    "macos-arm64": (_env("darwin", "Darwin", "arm64", "posix"), ["macosx_14_0_arm64"], "tensorflow"),
    "windows-x86_64": (_env("win32", "Windows", "AMD64", "nt"), ["win_amd64"], "tensorflow-cpu"),
}

def requirements_for(env, key="requirements"):
    "The requirements of settings.ini's `key` whose markers hold in `env`, markers dropped."
    out = []
    for text in shlex.split(_cfg().get(key, "")):
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            out.append(str(req))
    return out

def test_markers_pick_one_tensorflow_per_platform():
    for name, (env, _, tf) in PLATFORMS.items():
        names = [Requirement(r).name for r in requirements_for(env)]
        assert [n for n in names if n.startswith("tensorflow")] == [tf], (name, names)

def test_metadata_is_real():
    cfg, setup = _cfg(), (ROOT / "setup.py").read_text()
    assert "example.org" not in (ROOT / "settings.ini").read_text() and "example" not in setup
    assert "author_email" not in cfg and "url=" not in setup

@pytest.mark.parametrize("name", PLATFORMS)
def test_install_resolves(name, tmp_path):
    env, tags, tf = PLATFORMS[name]
    reqs = requirements_for(env) + requirements_for(env, "jax_requirements")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed",
           "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--target", str(tmp_path / "t"),
           "--report", str(tmp_path / "report.json"), "--disable-pip-version-check"]
    for tag in tags: cmd += ["--platform", tag]
    run = subprocess.run(cmd + reqs, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{name}: pip could not resolve {reqs}:\n{run.stderr[-3000:]}"
    report = json.loads((tmp_path / "report.json").read_text())
    resolved = {canonicalize_name(i["metadata"]["name"]): i["download_info"]["url"].rsplit("/", 1)[-1] for i in report["install"]}
    print(f"\n{name}:", *sorted(resolved.values()), sep="\n  ")  # pytest -s shows what resolved
    assert {canonicalize_name(Requirement(r).name) for r in reqs} == set(resolved), (name, reqs, resolved)
    assert resolved[tf].endswith(".whl"), (name, resolved)
