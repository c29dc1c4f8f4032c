#!/usr/bin/env bash
# Vendor a built GraphiQL (with the explorer plugin) and React 18 from the npm registry into
# gateway/static/graphiql/, so that the gateway serves GraphiQL itself: offline, no CDN, under
# a strict Content-Security-Policy. Needs node/npm (only `npm pack`, nothing is installed).
#
#   scripts/vendor-graphiql.sh            # the pinned versions below
#   GRAPHIQL_VERSION=3.8.3 scripts/vendor-graphiql.sh
#
# After a version change: update gateway/static/graphiql/VERSIONS.md and run
#   .venv/bin/pytest -q tests/graphql/test_graphiql_browser.py
set -euo pipefail

GRAPHIQL_VERSION="${GRAPHIQL_VERSION:-3.8.3}"
EXPLORER_VERSION="${EXPLORER_VERSION:-3.2.6}"
REACT_VERSION="${REACT_VERSION:-18.3.1}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/gateway/static/graphiql"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent \
  "graphiql@$GRAPHIQL_VERSION" \
  "@graphiql/plugin-explorer@$EXPLORER_VERSION" \
  "react@$REACT_VERSION" \
  "react-dom@$REACT_VERSION" >/dev/null

unpack() { # unpack <tarball> <dir>
  mkdir -p "$2"
  tar -xzf "$1" -C "$2" --strip-components=1
}
unpack "graphiql-$GRAPHIQL_VERSION.tgz" graphiql
unpack "graphiql-plugin-explorer-$EXPLORER_VERSION.tgz" explorer
unpack "react-$REACT_VERSION.tgz" react
unpack "react-dom-$REACT_VERSION.tgz" react-dom

mkdir -p "$dest"
# Only the built files; init.js and VERSIONS.md in $dest are ours and left alone.
install -m 0644 graphiql/graphiql.min.js "$dest/graphiql.min.js"
install -m 0644 graphiql/graphiql.min.css "$dest/graphiql.min.css"
install -m 0644 explorer/dist/index.umd.js "$dest/plugin-explorer.umd.js"
install -m 0644 explorer/dist/style.css "$dest/plugin-explorer.css"
install -m 0644 react/umd/react.production.min.js "$dest/react.production.min.js"
install -m 0644 react-dom/umd/react-dom.production.min.js "$dest/react-dom.production.min.js"

echo "vendored into $dest:"
(cd "$dest" && sha256sum graphiql.min.js graphiql.min.css plugin-explorer.umd.js \
  plugin-explorer.css react.production.min.js react-dom.production.min.js)
