"""The front-end packages (Bootstrap, ECharts) come from our own origin: their dist files
with the right types and the static files' headers, nothing else of node_modules, and a
clear error at start when they were never installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.conftest import TestClient
from tests.web.test_security_headers import check_headers
from web import WebError
from web.vendor import vendor_mounts

SERVED = [
    ("/static/vendor/bootstrap/css/bootstrap.min.css", "text/css", ".navbar"),
    ("/static/vendor/bootstrap/js/bootstrap.bundle.min.js", "text/javascript", "Toast"),
    ("/static/vendor/echarts/echarts.min.js", "text/javascript", "echarts"),
]


@pytest.mark.parametrize(("path", "content_type", "sample"), SERVED)
def test_the_dist_files_are_served_with_their_type(client: TestClient, path: str,
                                                   content_type: str, sample: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == content_type
    assert sample in response.text
    check_headers(response, cacheable=True)


@pytest.mark.parametrize("path", [
    "/static/vendor/bootstrap/%2e%2e/package.json",  # bootstrap/package.json, not dist
    "/static/vendor/bootstrap/..%2fpackage.json",
    "/static/vendor/bootstrap/%2e%2e/%2e%2e/echarts/package.json",
    "/static/vendor/echarts/..%2f..%2f..%2fapp.py",
    "/static/vendor/echarts/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static/vendor/zrender/dist/zrender.js",  # a dependency, not a package we serve
    "/static/vendor/bootstrap/%2fetc%2fpasswd",
])
def test_nothing_outside_the_dist_folders_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text[:200]
    assert "dependencies" not in response.text and "root:" not in response.text


def test_missing_packages_are_a_clear_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(WebError, match=r"bootstrap files are missing .*run \./run\.sh"):
        vendor_mounts(tmp_path)
    (tmp_path / "bootstrap" / "dist").mkdir(parents=True)
    with pytest.raises(WebError, match=r"echarts files are missing"):
        vendor_mounts(tmp_path)
