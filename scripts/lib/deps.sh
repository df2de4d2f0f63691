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
