"""Where the project's own files are (ground floor): the repository root (a source checkout or the installed
package's parent), the presets in cfg/."""

from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(PACKAGE_DIR)
CFG_DIR = os.path.join(REPO_ROOT, "cfg")
