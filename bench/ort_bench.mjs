#!/usr/bin/env node
// ONNX Runtime (npm onnxruntime-node, CPU execution provider) latency of one
// model at batch 1, printed as one JSON object like `edge-resnet bench --json`:
//
//   node bench/ort_bench.mjs --model M.onnx [--threads N] [--runs R] [--warmup W] [--name NAME]
//     {"runtime":"onnxruntime","version":"1.30.0","model":"resnet50","threads":1,"runs":20,
//      "min_ms":..,"median_ms":..,"p90_ms":..,"mean_ms":..}
//
//   node bench/ort_bench.mjs --model M.onnx --logits INPUT.npy [--threads N]
//     {"runtime":"onnxruntime","version":"1.30.0","model":"resnet50","logits":[...]}
//
// The session uses intraOpNumThreads = interOpNumThreads = N,
// graphOptimizationLevel 'all' and executionMode 'sequential'. The timed
// input is a fixed pseudo-random N(0,1) tensor of the model's input shape
// (--shape overrides it when the model's shape is symbolic).

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';

const usage = `usage: node ort_bench.mjs --model M.onnx [--threads N] [--runs R] [--warmup W]
                        [--name NAME] [--shape 1,3,224,224] [--logits INPUT.npy]`;

function die(msg) {
  process.stderr.write(`ort_bench: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { model: '', threads: 1, runs: 20, warmup: 3, name: '', shape: null, logits: '' };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    if (a === '-h' || a === '--help') {
      process.stdout.write(usage + '\n');
      process.exit(0);
    }
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const key = a.replace(/^--?/, '');
    if (!(key in o)) die(`unknown flag ${a}\n${usage}`);
    if (v === undefined) {
      if (i + 1 >= argv.length) die(`flag ${a} needs a value`);
      v = argv[++i];
    }
    if (key === 'threads' || key === 'runs' || key === 'warmup') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) die(`--${key} wants a non-negative integer, got ${v}`);
      o[key] = n;
    } else if (key === 'shape') {
      o.shape = v.split(',').map(Number);
      if (o.shape.some((d) => !Number.isInteger(d) || d < 1)) die(`bad --shape ${v}`);
    } else {
      o[key] = v;
    }
  }
  if (!o.model) die(`--model is required\n${usage}`);
  if (o.threads < 1 || o.runs < 1) die('--threads and --runs must be >= 1');
  if (!o.name) o.name = basename(o.model).replace(/\.onnx$/, '');
  return o;
}

// readNpyFloat32 reads a little-endian float32, C-order .npy file.
function readNpyFloat32(path) {
  const buf = readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${path}: malformed .npy header ${header}`);
  if (descr[1] !== '<f4') throw new Error(`${path}: dtype ${descr[1]}, want <f4 (float32)`);
  if (fortran[1] !== 'False') throw new Error(`${path}: Fortran order is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  if (buf.length - off < 4 * n) throw new Error(`${path}: truncated (${buf.length - off} bytes of data, want ${4 * n})`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(off + 4 * i);
  return { dims, data };
}

// randomNormal fills n floats from N(0,1) with a seeded generator
// (splitmix32 + Box-Muller), so every run times the same input.
function randomNormal(n, seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return (z + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next()));
    const t = 2 * Math.PI * next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

// summarize matches edge-resnet bench: min, median (mean of the middle two
// for an even count), p90 by nearest rank, mean.
function summarize(times) {
  const s = [...times].sort((a, b) => a - b);
  const n = s.length;
  const rank = (q) => s[Math.min(Math.max(Math.floor(q * n + 0.999999) - 1, 0), n - 1)];
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return {
    runs: n,
    min_ms: s[0],
    median_ms: median,
    p90_ms: rank(0.9),
    mean_ms: s.reduce((a, b) => a + b, 0) / n,
  };
}

async function loadOrt() {
  try {
    return await import('onnxruntime-node');
  } catch (e) {
    die(`cannot load onnxruntime-node (${e.message.split('\n')[0]}).\n` +
        `Install it with: cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm ci`);
  }
}

function inputShape(session, o) {
  if (o.shape) return o.shape;
  const meta = session.inputMetadata?.[0];
  const dims = meta?.shape;
  if (Array.isArray(dims) && dims.length > 0 && dims.every((d) => Number.isInteger(d) && d > 0)) return dims;
  if (Array.isArray(dims) && dims.length === 4) {
    // symbolic batch: batch 1, keep the static dimensions
    const fixed = dims.map((d, i) => (Number.isInteger(d) && d > 0 ? d : i === 0 ? 1 : NaN));
    if (fixed.every((d) => d > 0)) return fixed;
  }
  return [1, 3, 224, 224];
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = await loadOrt();
  const version = ort.env?.versions?.node ?? ort.env?.versions?.common ?? 'unknown';
  let session;
  try {
    session = await ort.InferenceSession.create(o.model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: o.threads,
      interOpNumThreads: o.threads,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
  } catch (e) {
    die(`${o.model}: ${e.message}`);
  }
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];

  if (o.logits) {
    const { dims, data } = readNpyFloat32(o.logits);
    const out = await session.run({ [inName]: new ort.Tensor('float32', data, dims) });
    const logits = Array.from(out[outName].data);
    process.stdout.write(JSON.stringify({ runtime: 'onnxruntime', version, model: o.name, logits }) + '\n');
    return;
  }

  const dims = inputShape(session, o);
  const n = dims.reduce((a, b) => a * b, 1);
  const feeds = { [inName]: new ort.Tensor('float32', randomNormal(n, 12345), dims) };
  for (let i = 0; i < o.warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < o.runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  await session.release?.();
  const res = { runtime: 'onnxruntime', version, model: o.name, threads: o.threads, ...summarize(times) };
  process.stdout.write(JSON.stringify(res) + '\n');
}

try {
  await main();
} catch (e) {
  die(e.message);
}
