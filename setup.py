"""Build and install the call center.

Metadata lives here rather than in pyproject's [project] table because the Cython
extensions need code anyway; pyproject.toml keeps [build-system] and the tool settings.

Every ``switch/media/*.pyx`` becomes an extension module next to its source. An editable
install (``pip install -e .[test]``) compiles them in place, so ``import switch.media.g711``
works straight from the work tree.
"""

from glob import glob
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = Path(__file__).resolve().parent


def media_extensions() -> list[Extension]:
    extensions = []
    for pyx in sorted(glob("switch/media/*.pyx", root_dir=HERE)):
        module = pyx[: -len(".pyx")].replace("/", ".")
        extensions.append(
            Extension(
                module,
                [pyx],
                include_dirs=["switch/media", numpy.get_include()],
                # Kernels use no deprecated numpy C API; say so to keep the build quiet.
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O3"],
            )
        )
    return extensions


def sip_extensions() -> list[Extension]:
    # The SIP message scanner (pure-Python twin: switch/sip/_scan_py.py).
    return [Extension("switch.sip._scan", ["switch/sip/_scan.pyx"], extra_compile_args=["-O3"])]


setup(
    name="callcenter",
    version="0.1.0",
    description="A call center on its own Python softswitch (SIP, RTP media, IVR, ACD, web)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8")
    if (HERE / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(
        include=[
            "switch",
            "switch.*",
            "apps",
            "apps.*",
            "ivr",
            "ivr.*",
            "acd",
            "acd.*",
            "web",
            "web.*",
            "callcenter",
            "callcenter.*",
        ]
    ),
    package_data={
        "apps": [
            "migrations/*.py",
            "migrations/versions/*.py",
            "migrations/*.mako",
        ],
        "switch.media": ["*.pyi", "*.pxd"],
        "switch.sip": ["*.pyi"],
        # Page templates (in subfolders too) and the pages' own scripts and styles.
        "web": ["templates/**/*.html", "static/*"],
    },
    ext_modules=cythonize(
        media_extensions() + sip_extensions(),
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
        },
    ),
    install_requires=[
        "uvloop",
        "SQLAlchemy[asyncio]>=2",
        "aiosqlite",
        "asyncpg",
        "alembic",
        "argon2-cffi",
        "starlette",
        "uvicorn",
        "openpyxl",
        "numpy",
        # Web: templates, signed session cookies, form/upload parsing, WebSockets for
        # uvicorn (the agent desktop's live channel).
        "jinja2",
        "itsdangerous",
        "python-multipart",
        "websockets",
        # The IANA time zones for [web] timezone, also where the system has no tzdata.
        "tzdata",
    ],
    extras_require={
        "test": [
            "pytest",
            "pytest-asyncio",
            "pytest-benchmark",
            "hypothesis",
            "ruff",
            "mypy",
            "pyVoIP==1.6.8",
            "sipvicious",
            # bench/relay_density.py compiles its load generator (bench/loadgen.pyx) on
            # first use; the package build's own Cython lives in an isolated env.
            "Cython>=3.0",
            # Starlette's TestClient; Playwright drives Debian's chromium (never a
            # downloaded browser) in the browser tests.
            "httpx",
            "playwright",
        ],
    },
    entry_points={"console_scripts": ["callcenter = callcenter.cli:main"]},
    zip_safe=False,
)
