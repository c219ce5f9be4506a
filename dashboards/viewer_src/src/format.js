// The viewer's wire formats (the server's side: sitetwin.dashboards.viewer).
//
// geometry.bin and points.bin: 4 bytes magic, u32 format version, u32 header length H, H bytes of UTF-8
// JSON (padded with spaces to a multiple of 4), then the header's buffers in order, each 4-byte aligned.
// colours.json: per-element RGBA and ghost flags as base64.

const TYPES = {
  f32: [Float32Array, 4],
  u32: [Uint32Array, 4],
  i32: [Int32Array, 4],
  u16: [Uint16Array, 2],
  i16: [Int16Array, 2],
  u8: [Uint8Array, 1],
  i8: [Int8Array, 1],
};

export const FORMAT_VERSION = 1;

/** The header and the typed arrays (views on ``buffer``, no copies) of a geometry.bin or points.bin. */
export function parseBuffers(buffer, what) {
  if (buffer.byteLength < 12) throw new Error(`${what}: ${buffer.byteLength} bytes, too short for a header`);
  const view = new DataView(buffer);
  const version = view.getUint32(4, true);
  if (version !== FORMAT_VERSION) throw new Error(`${what}: format version ${version}, this viewer reads ${FORMAT_VERSION}`);
  const length = view.getUint32(8, true);
  if (12 + length > buffer.byteLength) throw new Error(`${what}: header of ${length} bytes runs past the end`);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 12, length)));
  const arrays = {};
  let offset = 12 + length;
  offset = Math.ceil(offset / 4) * 4;
  for (const b of header.buffers || []) {
    const type = TYPES[b.type];
    if (!type) throw new Error(`${what}: buffer ${b.name} of unknown type ${b.type}`);
    const [Ctor, size] = type;
    const bytes = b.count * size;
    if (offset + bytes > buffer.byteLength) throw new Error(`${what}: buffer ${b.name} runs past the end`);
    arrays[b.name] = new Ctor(buffer, offset, b.count);
    offset += Math.ceil(bytes / 4) * 4;
  }
  return { header, arrays };
}

export function parseGeometry(buffer) {
  const { header, arrays } = parseBuffers(buffer, 'geometry.bin');
  for (const name of ['positions', 'element', 'indices']) {
    if (!arrays[name]) throw new Error(`geometry.bin: no ${name} buffer`);
  }
  return { header, arrays };
}

/** base64 -> Uint8Array */
export function fromBase64(text) {
  if (!text) return new Uint8Array(0);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function parseColours(json, elements) {
  const rgba = fromBase64(json.rgba);
  const ghost = fromBase64(json.ghost);
  if (rgba.length !== elements * 4) {
    throw new Error(`colours.json: ${rgba.length / 4} colours for ${elements} elements`);
  }
  let values = null;
  if (json.values) {
    const raw = fromBase64(json.values);
    values = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  }
  return { key: json.key, mode: json.mode, rgba, ghost, legend: json.legend || [], values,
           survey: json.survey || null, note: json.note || '' };
}
