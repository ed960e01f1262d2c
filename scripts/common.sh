# Sourced by the setup scripts: messages prefixed with the script's name, and Debian packages installed once.

say() { printf '%s: %s\n' "${0##*/}" "$*"; }
fail() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }
trap 'fail "line $LINENO: \"$BASH_COMMAND\" exited with $?"' ERR

# apt_install PACKAGE...: install the packages with apt-get (root only).
apt_install() {
    say "installing $*"
    # Unreachable third-party sources make `apt-get update` exit non-zero; Debian's own lists are what matters.
    apt-get update -qq >/dev/null 2>&1 || say "apt-get update reported errors (some sources unreachable); going on"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || fail "apt-get install $* failed"
}
