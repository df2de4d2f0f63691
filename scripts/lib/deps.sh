# Sourced by the scripts: installs what lapstat needs from Debian's packages when missing.
# The Swift toolchain itself comes with the machine; everything else is apt.
lapstat_install_deps() {
    local packages=(libzmq3-dev liblz4-dev libmicrohttpd-dev pkg-config curl "$@")
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
    fi
    command -v swift >/dev/null || { echo "swift is not on PATH (expected at /opt/swift)" >&2; return 1; }
}

# For the dashboard's browser test (Tests/browser/dashboard_test.py, run by the end-to-end
# tests): Debian's chromium and chromium-driver, and selenium from PyPI for the python3 on
# PATH. Used by scripts/test only; `lapstat up` needs none of it.
lapstat_install_browser_test_deps() {
    lapstat_install_deps chromium chromium-driver python3 python3-pip || return 1
    if ! python3 -c 'import selenium' 2>/dev/null; then
        echo "installing: selenium (pip)" >&2
        # Debian's own python3 refuses system-wide pip installs (PEP 668) unless told.
        python3 -m pip install --quiet selenium >&2 \
            || python3 -m pip install --quiet --break-system-packages selenium >&2 \
            || { echo "cannot install selenium with pip" >&2; return 1; }
    fi
}
