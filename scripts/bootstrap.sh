# shellcheck shell=bash
# Sourced by run.sh and test.sh: makes a fresh Debian clone runnable, and costs a few
# dpkg/sha256 checks when everything is already in place.
#   - Debian packages that are missing get installed (apt-get update only then, once);
#   - .venv is created with python3 when missing or broken;
#   - `pip install -e .[test]` runs when setup.py, pyproject.toml or a Cython source
#     changed since the last install, when a top-level package appeared or went (the
#     editable install maps each one by name), or when a compiled extension is missing;
#   - the web UI's front-end packages (web/package-lock.json: Bootstrap, ECharts) are
#     installed into web/node_modules with `npm ci` when missing or when the lock changed.
# After sourcing, the working directory is the repository root.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SUDO=""
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi
APT_UPDATED=0

# apt_install PKG...: install those of the Debian packages that are not installed yet.
apt_install() {
    local package missing=()
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
            missing+=("$package")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then return 0; fi
    echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
    if [[ $APT_UPDATED -eq 0 ]]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What the editable install depends on: when this changes, pip runs again.
_install_inputs_hash() {
    local inputs=(setup.py pyproject.toml)
    shopt -s nullglob
    inputs+=(switch/media/*.pyx switch/media/*.pxd switch/media/*.h)
    shopt -u nullglob
    { cat "${inputs[@]}"; printf '%s\n' */__init__.py; } | sha256sum | cut -d' ' -f1
}

# True when some switch/media/*.pyx has no compiled module beside it.
_extension_missing() {
    local pyx
    shopt -s nullglob
    for pyx in switch/media/*.pyx; do
        if ! compgen -G "${pyx%.pyx}.*.so" >/dev/null; then
            shopt -u nullglob
            return 0
        fi
    done
    shopt -u nullglob
    return 1
}

# The web UI's front-end packages, exactly as web/package-lock.json pins them.
_npm_install() {
    local stamp=web/node_modules/.callcenter-npm-stamp hash
    hash="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" == "$hash" ]]; then return 0; fi
    echo "bootstrap: npm ci (web/package-lock.json)" >&2
    (cd web && npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$hash" >"$stamp"
}

bootstrap() {
    apt_install python3-venv python3-dev gcc
    # npm comes with Debian's nodejs as its own package, but inside NodeSource's nodejs
    # (which conflicts with Debian's npm): install what is missing only.
    if ! command -v node >/dev/null; then apt_install nodejs; fi
    if ! command -v npm >/dev/null; then apt_install npm; fi

    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "bootstrap: Python 3.11 or newer is needed, python3 is $(python3 --version)" >&2
        return 1
    fi
    if [[ -d .venv ]] && ! .venv/bin/python -c '' 2>/dev/null; then
        echo "bootstrap: .venv is broken; recreating it" >&2
        rm -rf .venv
    fi
    if [[ ! -d .venv ]]; then
        echo "bootstrap: creating .venv" >&2
        python3 -m venv .venv
    fi

    local stamp=.venv/.callcenter-install-stamp hash
    hash="$(_install_inputs_hash)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]] || _extension_missing; then
        echo "bootstrap: pip install -e .[test]" >&2
        .venv/bin/python -m pip install --quiet -e '.[test]'
        echo "$hash" >"$stamp"
    fi
    _npm_install
}

bootstrap
