// Run by scripts/build-client, before wasm-opt:
//   node scripts/wasm-trap.mjs <in.wasm> <out.wasm> --trap <pattern>... --blank <pattern>...
//   node scripts/wasm-trap.mjs --list <in.wasm>     (each function's code size and name)
//
// Replaces the body of each function whose (mangled) name in the module's `name` section, which
// rustc writes, matches one of the `--trap` patterns (regular expressions) by `unreachable`: a
// trap, as when it ran to its end. wasm-opt then inlines the trap into every caller and drops
// what only that function reached. Then fills with zeros the bytes of the data section that match
// a `--blank` pattern (read as Latin-1): the panics' messages and file names, which only the
// trapped functions read, but which wasm-opt cannot prove unused; it leaves out runs of zeros.
//
// Why: on wasm32-unknown-unknown std's panic and allocation-error handlers format a message for
// stderr, which goes nowhere on this target, and then trap (`panic = "abort"`). Stable Rust
// cannot give a crate that links std a handler of its own (`#[panic_handler]` is for `no_std`,
// `set_alloc_error_hook` is unstable, `panic = "immediate-abort"` needs a nightly std), so the
// build does what they would: the trap without the formatting, `core::fmt` and the panic
// machinery. A pattern that starts with `!` must match a function, so that a renamed std function
// is noticed; the others may match none.
import { readFileSync, writeFileSync } from "node:fs";

import { encodeLeb, readLeb } from "./wasm-leb.mjs";

const args = process.argv.slice(2);
const list = args[0] === "--list";
if (list) args.shift();
const [input, output, ...rest] = args;
const patterns = { "--trap": [], "--blank": [] };
let into;
for (const arg of rest) {
  if (arg in patterns) into = patterns[arg];
  else if (into) into.push(arg);
  else throw new Error(`wasm-trap: ${arg}: give --trap or --blank first`);
}
const traps = patterns["--trap"].map((p) => ({
  required: p.startsWith("!"),
  regex: new RegExp(p.replace(/^!/, "")),
  used: false,
}));
const bytes = readFileSync(input);

/** Reads an unsigned LEB128 at `at`: [value, next offset]. */
const leb = (at) => readLeb(bytes, at);

// The sections, and what this needs of them: the number of imported functions (function indices
// count imports first), the code section's bodies, and the function names.
const sections = [];
let imported = 0;
const names = new Map();
for (let at = 8; at < bytes.length; ) {
  const id = bytes[at];
  const [size, start] = leb(at + 1);
  sections.push({ id, header: at, start, end: start + size });
  if (id === 2) {
    let [count, p] = leb(start);
    for (; count > 0; count--) {
      for (let s = 0; s < 2; s++) {
        const [len, q] = leb(p);
        p = q + len;
      }
      const kind = bytes[p++];
      if (kind === 0) imported++;
      // A function's type index, a table's type and limits, a memory's limits, a global's type
      // and mutability, a tag's attribute and type index.
      if (kind === 0) [, p] = leb(p);
      else if (kind === 1) p = limits(p + 1);
      else if (kind === 2) p = limits(p);
      else if (kind === 3) p += 2;
      else if (kind === 4) [, p] = leb(p + 1);
      else throw new Error(`wasm-trap: import kind ${kind} unknown`);
    }
  } else if (id === 0) {
    const [len, p] = leb(start);
    if (bytes.toString("latin1", p, p + len) === "name") readNames(p + len, start + size);
  }
  at = start + size;
}

function limits(p) {
  const flags = bytes[p];
  [, p] = leb(p + 1);
  if (flags & 1) [, p] = leb(p);
  return p;
}

function readNames(p, end) {
  while (p < end) {
    const kind = bytes[p];
    const [size, start] = leb(p + 1);
    if (kind === 1) {
      let [count, q] = leb(start);
      for (; count > 0; count--) {
        const [index, r] = leb(q);
        const [len, s] = leb(r);
        names.set(index, bytes.toString("utf8", s, s + len));
        q = s + len;
      }
    }
    p = start + size;
  }
}

const code = sections.find((s) => s.id === 10);
if (!code) throw new Error("wasm-trap: no code section");
if (names.size === 0) throw new Error("wasm-trap: no function names (was the module stripped?)");

const bodies = [];
let [count, p] = leb(code.start);
for (let i = 0; i < count; i++) {
  const [size, start] = leb(p);
  bodies.push({ name: names.get(imported + i) ?? `#${imported + i}`, start: p, end: start + size, size });
  p = start + size;
}

if (list) {
  for (const body of [...bodies].sort((a, b) => b.size - a.size)) console.log(`${body.size}\t${body.name}`);
  process.exit(0);
}

// A body with no locals and one `unreachable`: size 3, 0 local groups, 0x00, `end`.
const TRAP = [3, 0, 0x00, 0x0b];
const parts = [];
let trapped = 0;
for (const body of bodies) {
  const trap = traps.find((t) => t.regex.test(body.name));
  if (trap) {
    trap.used = true;
    trapped++;
  }
  parts.push(trap ? Buffer.from(TRAP) : bytes.subarray(body.start, body.end));
}
const missing = traps.filter((t) => t.required && !t.used).map((t) => t.regex.source);
if (missing.length) throw new Error(`wasm-trap: no function matches ${missing.join(", ")}`);

// The data section comes after the code section; its length does not change.
const data = sections.find((s) => s.id === 11);
const tail = Buffer.from(bytes.subarray(code.end));
let blanked = 0;
if (data) {
  if (data.start < code.end) throw new Error("wasm-trap: the data section is before the code section");
  const start = data.start - code.end;
  const text = tail.toString("latin1", start, data.end - code.end);
  for (const pattern of patterns["--blank"]) {
    for (const match of text.matchAll(new RegExp(pattern, "g"))) {
      tail.fill(0, start + match.index, start + match.index + match[0].length);
      blanked += match[0].length;
    }
  }
}

const content = Buffer.concat([Buffer.from(encodeLeb(count)), ...parts]);
writeFileSync(
  output,
  Buffer.concat([bytes.subarray(0, code.header), Buffer.from([10, ...encodeLeb(content.length)]), content, tail]),
);
console.log(`wasm-trap: ${trapped} functions trap, ${blanked} bytes of data blanked, in ${output}`);
