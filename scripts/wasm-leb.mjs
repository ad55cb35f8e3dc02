// LEB128, as the wasm binary format writes its integers: shared by the build's wasm rewriters
// (scripts/wasm-trap.mjs, scripts/short-exports.mjs).

/** Reads an unsigned LEB128 from `bytes` at `at`: [value, next offset]. */
export function readLeb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, at];
    shift += 7;
  }
}

/** The unsigned LEB128 bytes of `value`. */
export function encodeLeb(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}
