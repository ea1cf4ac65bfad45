#!/usr/bin/env node
// Generates static protobuf codecs (no reflection on the hot path) from proto/*.proto
// into src/shared/gen/. Skips work when the outputs are newer than every input.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const inputs = ['proto/kv.proto', 'proto/auth.proto', 'proto/rpc.proto', 'proto/v3lock.proto', 'proto/v3election.proto'].map((p) => path.join(root, p));
const outDir = path.join(root, 'src/shared/gen');
const js = path.join(outDir, 'etcd.js');
const dts = path.join(outDir, 'etcd.d.ts');

function mtime(p) {
  try { return fs.statSync(p).mtimeMs; } catch { return 0; }
}
const newestInput = Math.max(...inputs.map(mtime), mtime(__filename));
if (mtime(js) > newestInput && mtime(dts) > newestInput) process.exit(0);

fs.mkdirSync(outDir, { recursive: true });
const bin = (name) => path.join(root, 'node_modules/.bin', name);
execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'commonjs', '--no-verify',
  '--no-delimited', '--no-beautify', '-p', path.join(root, 'proto'), '-o', js, ...inputs], { stdio: 'inherit' });
execFileSync(bin('pbts'), ['-o', dts, js], { stdio: 'inherit' });
