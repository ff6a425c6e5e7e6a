#!/usr/bin/env node
// Time ONNX Runtime (npm package onnxruntime-node, CPU execution provider) on an ONNX model,
// batch 1, with intraOpNumThreads 1 and 2; print the median latencies as JSON.
//
// usage: node tools/bench/ort_bench.js MODEL.onnx [--input input.f32] [--check logits.f32]
//            [--runs 30] [--warmup 5] [--threads 1,2] [--ort-prefix DIR]
//   --input   raw little-endian f32 input with the model's input shape (default: zeros)
//   --check   raw f32 reference output; prints max_abs_diff against the first output
//   --ort-prefix  an npm --prefix where onnxruntime-node is installed (default: normal
//                 require() lookup, then /tmp/ortbench)
// Install (the package's postinstall downloads CUDA binaries from NuGet, which fails offline;
// the CPU binaries ship inside the npm package, so skip that step):
//   ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix /tmp/ortbench onnxruntime-node
'use strict';

const fs = require('fs');
const path = require('path');

function usage(msg) {
  if (msg) console.error('ort_bench.js: error: ' + msg);
  console.error('usage: node ort_bench.js MODEL.onnx [--input F] [--check F] [--runs N] [--warmup N] ' +
                '[--threads 1,2] [--ort-prefix DIR]');
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
  const a = {runs: 30, warmup: 5, threads: [1, 2], prefix: null, input: null, check: null, model: null};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(k + ' needs a value');
      return argv[++i];
    };
    if (k === '-h' || k === '--help') usage();
    else if (k === '--runs') a.runs = parseInt(next(), 10);
    else if (k === '--warmup') a.warmup = parseInt(next(), 10);
    else if (k === '--threads') a.threads = next().split(',').map((s) => parseInt(s, 10));
    else if (k === '--ort-prefix') a.prefix = next();
    else if (k === '--input') a.input = next();
    else if (k === '--check') a.check = next();
    else if (k.startsWith('-')) usage('unknown option ' + k);
    else if (a.model === null) a.model = k;
    else usage('unexpected argument ' + k);
  }
  if (a.model === null) usage('no model given');
  if (!(a.runs > 0) || !(a.warmup >= 0) || a.threads.some((t) => !(t > 0))) usage('bad --runs/--warmup/--threads');
  return a;
}

function loadOrt(prefix) {
  const tries = prefix ? [path.join(prefix, 'node_modules', 'onnxruntime-node')]
                       : ['onnxruntime-node', '/tmp/ortbench/node_modules/onnxruntime-node'];
  for (const t of tries) {
    try {
      return require(t);
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  console.error('ort_bench.js: error: onnxruntime-node not found (tried ' + tries.join(', ') + '); install it with\n' +
                '  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix /tmp/ortbench onnxruntime-node');
  process.exit(2);
}

function readF32(file) {
  const b = fs.readFileSync(file);
  if (b.length % 4) throw new Error(file + ': size is not a multiple of 4');
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i);
  return out;
}

function median(xs) {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = loadOrt(a.prefix);
  const result = {model: a.model, ort: ort.env.versions.node || null, runs: a.runs, warmup: a.warmup, results: []};
  for (const threads of a.threads) {
    const session = await ort.InferenceSession.create(a.model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const name = session.inputNames[0];
    // onnxruntime-node 1.x exposes inputMetadata on newer versions; fall back to DeiT's shape.
    let dims = [1, 3, 224, 224];
    if (session.inputMetadata && session.inputMetadata[0] && Array.isArray(session.inputMetadata[0].shape)) {
      dims = session.inputMetadata[0].shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    }
    const n = dims.reduce((p, q) => p * q, 1);
    let data = new Float32Array(n);
    if (a.input) {
      data = readF32(a.input);
      if (data.length !== n) throw new Error(a.input + ' has ' + data.length + ' floats, input needs ' + n);
    }
    const feeds = {[name]: new ort.Tensor('float32', data, dims)};
    let out = null;
    for (let i = 0; i < a.warmup; i++) out = await session.run(feeds);
    const ts = [];
    for (let i = 0; i < a.runs; i++) {
      const t0 = process.hrtime.bigint();
      out = await session.run(feeds);
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const r = {threads, median_ms: +median(ts).toFixed(3), min_ms: +Math.min(...ts).toFixed(3)};
    if (a.check) {
      const want = readF32(a.check);
      const got = out[session.outputNames[0]].data;
      if (got.length !== want.length) throw new Error('output has ' + got.length + ' values, --check ' + want.length);
      let d = 0;
      for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
      r.max_abs_diff = d;
    }
    result.results.push(r);
    if (session.release) await session.release();
  }
  console.log(JSON.stringify(result, null, 1));
}

main().catch((e) => {
  console.error('ort_bench.js: error: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
