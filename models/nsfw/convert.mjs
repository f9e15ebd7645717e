// Converts the nsfwjs package's MobileNetV2 (a Keras model in TensorFlow.js format, wrapped in
// two small JavaScript modules) into the one file the scan service's NSFW engine loads:
// safetensors with every weight dequantised to float32 exactly as TensorFlow.js does, and the
// layer graph in its metadata. Plain data conversion: no arithmetic but tfjs's own dequantisation,
// keys written in sorted order, so the output is the same bytes on every machine.
//
//   node convert.mjs OUT.safetensors
import { createRequire } from 'node:module';
import { writeFileSync, readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const dir = './node_modules/nsfwjs/dist/models/mobilenet_v2/';
const pkg = JSON.parse(readFileSync('./node_modules/nsfwjs/package.json', 'utf8'));
const model = require(dir + 'model.min.js');
const shard = require(dir + 'group1-shard1of1.min.js');
const out = process.argv[2];
if (!out) {
  console.error('usage: node convert.mjs OUT.safetensors');
  process.exit(2);
}

const topology = model.modelTopology.model_config;
if (topology.class_name !== 'Model') throw new Error(`unexpected model class ${topology.class_name}`);

// The layers, in the file's (topological) order, with what the forward pass needs of each.
const KEEP = {
  InputLayer: (c) => ({ shape: c.batch_input_shape.slice(1) }),
  ZeroPadding2D: (c) => ({ padding: c.padding }),
  Conv2D: (c) => ({
    filters: c.filters, kernel_size: c.kernel_size, strides: c.strides, padding: c.padding,
    dilation_rate: c.dilation_rate, activation: c.activation, use_bias: c.use_bias,
  }),
  DepthwiseConv2D: (c) => ({
    kernel_size: c.kernel_size, strides: c.strides, padding: c.padding,
    dilation_rate: c.dilation_rate, activation: c.activation, use_bias: c.use_bias,
    depth_multiplier: c.depth_multiplier,
  }),
  BatchNormalization: (c) => ({ axis: c.axis, epsilon: c.epsilon, center: c.center, scale: c.scale }),
  ReLU: (c) => ({ max_value: c.max_value, negative_slope: c.negative_slope, threshold: c.threshold }),
  Add: () => ({}),
  AveragePooling2D: (c) => ({ pool_size: c.pool_size, strides: c.strides, padding: c.padding }),
  Flatten: () => ({}),
  Dense: (c) => ({ units: c.units, activation: c.activation, use_bias: c.use_bias }),
  Dropout: () => ({}),
};
const layers = topology.config.layers.map((l) => {
  const keep = KEEP[l.class_name];
  if (!keep) throw new Error(`layer ${l.name}: ${l.class_name} is not supported`);
  if (l.config.data_format && l.config.data_format !== 'channels_last') {
    throw new Error(`layer ${l.name}: ${l.config.data_format}`);
  }
  const inputs = (l.inbound_nodes[0] || []).map((n) => n[0]);
  return { name: l.name, op: l.class_name, inputs, ...keep(l.config) };
});
const output = topology.config.output_layers.map((o) => o[0]);

// The weights: one shard of uint8 values, each tensor `min + scale * q` (tfjs io_utils).
const bytes = Buffer.from(shard, 'base64');
const tensors = [];
let offset = 0;
for (const spec of model.weightsManifest.flatMap((g) => g.weights)) {
  const q = spec.quantization;
  if (spec.dtype !== 'float32' || !q || q.dtype !== 'uint8') {
    throw new Error(`${spec.name}: ${spec.dtype}/${q && q.dtype} is not handled`);
  }
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = bytes[offset + i] * q.scale + q.min;
  offset += n;
  tensors.push({ name: spec.name, shape: spec.shape, values });
}
if (offset !== bytes.length) throw new Error(`weights: ${bytes.length - offset} bytes left over`);
tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

const header = {
  __metadata__: {
    format: 'coffer-nsfw/1',
    source: `${pkg.name}@${pkg.version} dist/models/mobilenet_v2`,
    classes: JSON.stringify(['drawing', 'hentai', 'neutral', 'porn', 'sexy']),
    graph: JSON.stringify({ layers, output }),
  },
};
let at = 0;
for (const t of tensors) {
  header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + t.values.byteLength] };
  at += t.values.byteLength;
}
let json = JSON.stringify(header);
json += ' '.repeat((8 - (json.length % 8)) % 8);
const head = Buffer.alloc(8);
head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
const body = Buffer.concat([head, Buffer.from(json), ...tensors.map((t) => Buffer.from(t.values.buffer))]);
writeFileSync(out, body);
console.log(`${out}: ${tensors.length} tensors, ${layers.length} layers, ${body.length} bytes from ${pkg.name}@${pkg.version}`);
