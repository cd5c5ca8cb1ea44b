// Runs an ONNX model (one float32 input, one float32 output) with ONNX
// Runtime's WebAssembly build under Node.js: an ONNX evaluator independent
// of trainer, for the export tests (export/onnx_test.go) and for checking
// an export by hand.
//
//   node scripts/onnx/run.mjs MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32
//
// INPUT.f32 holds N*C*H*W little-endian float32 values (NCHW); OUTPUT.f32
// gets the first output's values the same way. One JSON line on stdout
// gives the input and output names and the output's dims. Install the
// runtime first: npm ci --prefix scripts/onnx
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';

const [model, inFile, dimsArg, outFile] = process.argv.slice(2);
if (!outFile) {
  console.error('usage: node scripts/onnx/run.mjs MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32');
  process.exit(2);
}
const dims = dimsArg.split(',').map(Number);
if (dims.some((d) => !Number.isInteger(d) || d < 1)) {
  console.error(`dims ${dimsArg}: want positive integers like 4,3,32,32`);
  process.exit(2);
}
const raw = readFileSync(inFile);
const want = dims.reduce((a, b) => a * b, 1) * 4;
if (raw.length !== want) {
  console.error(`${inFile}: ${raw.length} bytes, dims ${dimsArg} need ${want}`);
  process.exit(2);
}
const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));

ort.env.wasm.numThreads = 1; // no worker threads: one core, deterministic
ort.env.logLevel = 'error';
const session = await ort.InferenceSession.create(readFileSync(model), {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'disabled', // run the graph as written, no fusions
});
const inName = session.inputNames[0];
const outName = session.outputNames[0];
const res = await session.run({ [inName]: new ort.Tensor('float32', x, dims) });
const y = res[outName];
writeFileSync(outFile, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
console.log(JSON.stringify({ input: inName, output: outName, dims: y.dims }));
