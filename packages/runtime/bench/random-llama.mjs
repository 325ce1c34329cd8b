// Random-weight Llama checkpoints for the benches (written here, never downloaded).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A single-file safetensors Llama checkpoint (f32, untied) for a config.json object, with
 * N(0, 0.02)-like weights from a fast generator: no download. Returns the parameter count and the
 * bytes a decode step reads of them (every weight but the embedding table).
 */
export async function writeRandomLlama(dir, config) {
  const { hidden_size: H, intermediate_size: F, vocab_size: V, num_hidden_layers: L } = config;
  const shapes = [
    ['model.embed_tokens.weight', [V, H]],
    ['model.norm.weight', [H]],
    ['lm_head.weight', [V, H]],
  ];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    for (const n of ['q', 'k', 'v', 'o']) shapes.push([`${p}.self_attn.${n}_proj.weight`, [H, H]]);
    shapes.push([`${p}.mlp.gate_proj.weight`, [F, H]], [`${p}.mlp.up_proj.weight`, [F, H]]);
    shapes.push([`${p}.mlp.down_proj.weight`, [H, F]]);
    shapes.push([`${p}.input_layernorm.weight`, [H]], [`${p}.post_attention_layernorm.weight`, [H]]);
  }
  const header = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, d) => a * d, 1) * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const data = new Float32Array(offset / 4);
  let s = 1;
  for (const [name, shape] of shapes) {
    const [from, to] = header[name].data_offsets.map((b) => b / 4);
    if (shape.length === 1) data.fill(1, from, to);
    else
      for (let i = from; i < to; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        data[i] = (s / 2 ** 32 - 0.5) * 0.07; // uniform, standard deviation ~0.02
      }
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  await writeFile(
    join(dir, 'model.safetensors'),
    Buffer.concat([prefix, Buffer.from(json), Buffer.from(data.buffer)]),
  );
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const params = data.length;
  const embedding = V * H;
  return { params, stepWeightBytes: (params - embedding) * 4 };
}
