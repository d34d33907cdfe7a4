#!/usr/bin/env sh
# The Debian packages `make run` and `make test` need beside Python (called by the Makefile and .ci/run).
#   scripts/system-deps.sh run    lua-cjson (the local gateway runs Kong's Lua plugins with it)
#   scripts/system-deps.sh load   also redis-server (make soak and make bench start a private one)
#   scripts/system-deps.sh test   also redis-server, nginx-light + libnginx-mod-http-lua (tests/nginx),
#                                 chromium (the live page's browser test, tests/e2e/test_live_page_browser.py)
# Missing packages are installed with apt-get when this runs as root; otherwise it prints the command.
set -eu

need=""
have_cjson() {
    for f in /usr/lib/*/lua/5.1/cjson.so /usr/local/lib/lua/5.1/cjson.so /usr/lib/lua/5.1/cjson.so; do
        [ -e "$f" ] && return 0
    done
    return 1
}
have_cjson || need="$need lua-cjson"
if [ "${1:-run}" = "test" ] || [ "${1:-run}" = "load" ]; then
    command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
fi
if [ "${1:-run}" = "test" ]; then
    { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || need="$need nginx-light"
    ls /usr/lib/nginx/modules/ngx_http_lua_module.so >/dev/null 2>&1 || need="$need libnginx-mod-http-lua"
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } || need="$need chromium"
fi
[ -z "$need" ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
    # Debian starts nginx on port 80 after installing it; the tests start their own
    if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
    exit 0
fi
echo "system-deps: missing Debian packages:$need" >&2
echo "system-deps: install them with: sudo apt-get install -y$need" >&2
exit 1
