"""``python -m assay_plugin build SOURCE.py [-o OUT.wasm]``: builds a WASI
component from a Python file that declares one scorer or target.

It imports SOURCE natively to learn the plugin's kind, writes a two-line
entry module exporting the SDK's adapter for that world, and runs
componentize-py (pinned in ``requirements.txt``) with the SDK and SOURCE's
folder on the Python path. componentize-py snapshots the interpreter after
the imports, so module-level work is done once, at build time.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ._plugin import _registry, the_plugin

SDK_DIR = Path(__file__).resolve().parent.parent
#: The folder under plugin-sdk/wit/ of the contract version this SDK builds
#: against (`CONTRACT_VERSION` 0.1.0: one folder per major.minor).
WIT_FOLDER = "v0.1"
#: The contract. The only place the Python SDK names the WIT folder.
WIT_DIR = SDK_DIR.parent.parent / "plugin-sdk" / "wit" / WIT_FOLDER
#: The componentize-py this SDK is tested with (also in requirements.txt).
COMPONENTIZE_PY = "componentize-py==0.25.1"

WORLDS = {"scorer": ("scorer-plugin", "Scorer", "scorer_export"),
          "target": ("target-plugin", "Target", "target_export")}


def find_componentize_py() -> str:
    """The componentize-py executable next to this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "componentize-py"
    if beside.is_file():
        return str(beside)
    found = shutil.which("componentize-py")
    if found:
        return found
    raise SystemExit(
        f"error: componentize-py not found: install it with `pip install {COMPONENTIZE_PY}` "
        "(scripts/install-deps.sh --plugin-sdks does this in sdk/python/.venv)"
    )


def plugin_kind(source: Path) -> str:
    """Imports ``source`` and returns the kind of the one plugin it declares."""
    sys.path.insert(0, str(source.parent))
    spec = importlib.util.spec_from_file_location(source.stem, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[source.stem] = module
    spec.loader.exec_module(module)
    if not _registry:
        raise SystemExit(f"error: {source} declares no @scorer or @target")
    try:
        return the_plugin().kind
    except RuntimeError as e:
        raise SystemExit(f"error: {source}: {e}")


def build(source: Path, out: Path) -> None:
    if not WIT_DIR.is_dir():
        raise SystemExit(f"error: the contract is missing at {WIT_DIR}")
    kind = plugin_kind(source)
    world, export_name, factory = WORLDS[kind]
    with tempfile.TemporaryDirectory(prefix="assay-py-build-") as tmp:
        entry = Path(tmp) / "assay_component_entry.py"
        entry.write_text(
            f"import {source.stem}  # declares the plugin\n"
            f"from assay_plugin._component import {factory}\n"
            f"{export_name} = {factory}()\n"
        )
        cmd = [find_componentize_py(), "-d", str(WIT_DIR), "-w", world, "componentize",
               "-p", tmp, "-p", str(SDK_DIR), "-p", str(source.parent),
               "assay_component_entry", "-o", str(out)]
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout)
            raise SystemExit(f"error: componentize-py failed (exit {result.returncode})")
    print(f"built {kind} `{the_plugin().info.id}`: {out} ({os.path.getsize(out):,} bytes)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m assay_plugin build",
                                     description="Build an assay plugin component from a Python file.")
    parser.add_argument("source", type=Path, help="the .py file declaring the plugin")
    parser.add_argument("-o", "--out", type=Path, help="output .wasm (default: SOURCE with .wasm)")
    args = parser.parse_args(argv)
    source = args.source.resolve()
    if not source.is_file():
        raise SystemExit(f"error: {args.source} does not exist")
    out = (args.out or source.with_suffix(".wasm")).resolve()
    build(source, out)
