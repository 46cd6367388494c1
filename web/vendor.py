"""The front-end packages (web/package.json, installed by scripts/bootstrap.sh with npm)
served from our own origin: only each package's dist/ folder, never node_modules whole.

    /static/vendor/bootstrap/css/bootstrap.min.css      Bootstrap 5.3 (CSS framework)
    /static/vendor/bootstrap/js/bootstrap.bundle.min.js  its components' script (toasts)
    /static/vendor/echarts/echarts.min.js                Apache ECharts (charts)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from web.errors import WebError

NODE_MODULES: Final = Path(__file__).resolve().parent / "node_modules"
URL_PREFIX: Final = "/static/vendor"
# URL folder under URL_PREFIX -> the folder it serves, relative to node_modules.
PACKAGES: Final[Mapping[str, str]] = {
    "bootstrap": "bootstrap/dist",
    "echarts": "echarts/dist",
}


def vendor_mounts(node_modules: Path = NODE_MODULES) -> list[Mount]:
    """One static mount per package; a package that is not installed is a WebError that
    says how to install it (at start, not as a page without styles)."""
    mounts = []
    for name, folder in PACKAGES.items():
        directory = node_modules / folder
        if not directory.is_dir():
            raise WebError(
                f"the web UI's {name} files are missing ({directory}): run ./run.sh, "
                "which installs them with npm from web/package-lock.json")
        mounts.append(Mount(f"{URL_PREFIX}/{name}", app=StaticFiles(directory=directory),
                            name=f"vendor-{name}"))
    return mounts
