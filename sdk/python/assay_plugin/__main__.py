"""``python -m assay_plugin build ...`` (see :mod:`assay_plugin.build`)."""

import sys

from .build import main

if len(sys.argv) < 2 or sys.argv[1] != "build":
    sys.exit("usage: python -m assay_plugin build SOURCE.py [-o OUT.wasm]")
main(sys.argv[2:])
