#!/usr/bin/env -S node --initial-old-space-size=64
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` through the `prepare` script).
// The old generation starts at 64 MiB: on V8's small default, the server's steady trickle of promoted request
// objects set off a major GC every ~50 requests, the main cause of its flush-wait tail (docs/performance.md).
require('../dist/src/cli/main.js');
