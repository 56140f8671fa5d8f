#!/bin/sh
# `npm start`: the built server as npm's only child (exec: a SIGTERM to npm reaches it), with V8's young
# generation sized for its database (issue 21). Each request's short-lived objects are made there; on
# Node 20 its two semi-spaces grow to 16 MB each. Measured with ../shared/perf, taking turns in one run:
# - on PostgreSQL, 4 and 8 MB cost list 35% and 10% of its req/s and 32 MB used 3-30% less server CPU per
#   request in 7 of 8 pairs (list, read, create, mixed, two rounds): the server takes 32;
# - embedded, 4 MB: the idle server holds ~25 MB less (190 MB against 214) at the same req/s, the
#   database thread being what bounds them.
#
# The server is dist/bundle/server.js: tsc's output bundled by esbuild (scripts/build-if-stale.mjs), which
# loads in ~0.5 s where the ~1,300 modules of dist/server.js took ~1.4 s (issue 21).
#
# First, a build when a source is newer than the last one, or a migration (or PGlite's version) than the
# embedded seed: scripts/build-if-stale.mjs, run only when `find` sees such a file. Asking it every time
# started a node process that took 130-200 ms of each start to find nothing to do (issue 21).
stale () {
  [ -e dist/.tsbuildinfo ] && [ -e dist/bundle/server.js ] && [ -e dist/embedded-seed ] || return 0
  newer=$(find src tsconfig.json tsconfig.build.json package-lock.json -type f -newer dist/.tsbuildinfo -print 2>/dev/null &&
    find src/db/migrations package-lock.json -type f -newer dist/embedded-seed -print 2>/dev/null) || return 0
  [ -n "$newer" ]
}
if stale; then
  node scripts/build-if-stale.mjs || exit $?
fi
if [ -n "$DATABASE_URL" ]; then
  exec node --max-semi-space-size=32 dist/bundle/server.js
fi
exec node --max-semi-space-size=4 dist/bundle/server.js
