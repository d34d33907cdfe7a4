#!/usr/bin/env sh
# The Claude Code CLI, pinned, for tests/e2e/test_claude_code.py (a real client through the local
# gateway, run with no network but loopback). Installed with npm into .run/claude-code; without npm
# it says so and those tests are skipped (CI sets AWS_MASKER_REQUIRE_CLAUDE_CODE=1, which fails them).
set -eu
VERSION="2.1.332"
DIR=".run/claude-code"
BIN="$DIR/node_modules/.bin/claude"
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "^$VERSION "; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "claude-code: npm is not installed; the Claude Code tests will be skipped" >&2
    exit 0
fi
echo "claude-code: installing @anthropic-ai/claude-code@$VERSION into $DIR"
mkdir -p "$DIR"
npm install --silent --no-audit --no-fund --prefix "$DIR" "@anthropic-ai/claude-code@$VERSION" >/dev/null
"$BIN" --version
