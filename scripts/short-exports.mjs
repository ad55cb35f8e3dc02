// Run by scripts/build-client, after wasm-opt and before the JavaScript is minified:
//   node scripts/short-exports.mjs <module.wasm> <web.js>
//
// Renames the module's function exports to one or two letters, in the module and in web.js,
// where host.js and socket.js call them as `wasm.<name>(...)`: minifiers rename variables, not
// properties, so the names would otherwise ship twice, once in each file. Fails when web.js uses
// `wasm.<name>` for a name the module does not export, which a renamed export in mod.rs without
// its JavaScript would be.
import { readFileSync, writeFileSync } from "node:fs";

import { encodeLeb, readLeb } from "./wasm-leb.mjs";

const [wasmFile, jsFile] = process.argv.slice(2);
const bytes = readFileSync(wasmFile);

/** Reads an unsigned LEB128 at `at`: [value, next offset]. */
const leb = (at) => readLeb(bytes, at);

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const shortName = (i) => (i < LETTERS.length ? "" : LETTERS[Math.floor(i / LETTERS.length) - 1]) + LETTERS[i % LETTERS.length];

const renamed = new Map();
let at = 8;
let result;
while (at < bytes.length) {
  const id = bytes[at];
  const [size, start] = leb(at + 1);
  const end = start + size;
  if (id === 7) {
    let [count, p] = leb(start);
    const entries = [];
    for (; count > 0; count--) {
      const [length, q] = leb(p);
      const name = bytes.toString("utf8", q, q + length);
      const kind = bytes[q + length];
      [, p] = leb(q + length + 1);
      // The linker's `__data_end` and `__heap_base` globals and the memory, which web.js never
      // reads (only numbers cross), are not exported.
      if ((kind === 3 && name.startsWith("__")) || kind === 2) continue;
      const newName = kind === 0 ? shortName(renamed.size) : name;
      if (kind === 0) renamed.set(name, newName);
      const encoded = Buffer.from(newName, "utf8");
      entries.push(Buffer.concat([Buffer.from(encodeLeb(encoded.length)), encoded, bytes.subarray(q + length, p)]));
    }
    const content = Buffer.concat([Buffer.from(encodeLeb(entries.length)), ...entries]);
    result = Buffer.concat([
      bytes.subarray(0, at),
      Buffer.from([7, ...encodeLeb(content.length)]),
      content,
      bytes.subarray(end),
    ]);
    break;
  }
  at = end;
}
if (!result) throw new Error(`short-exports: ${wasmFile} has no export section`);

const unknown = new Set();
const js = readFileSync(jsFile, "utf8").replace(/\bwasm\.([A-Za-z_$][\w$]*)/g, (whole, name) => {
  if (!renamed.has(name)) unknown.add(name);
  return `wasm.${renamed.get(name)}`;
});
if (unknown.size) throw new Error(`short-exports: ${jsFile} calls wasm.${[...unknown].join(", wasm.")}, which the module does not export`);

writeFileSync(wasmFile, result);
writeFileSync(jsFile, js);
console.log(`short-exports: ${renamed.size} exports renamed in ${wasmFile} and ${jsFile}`);
