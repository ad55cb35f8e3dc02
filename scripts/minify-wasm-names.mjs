// Run by scripts/build-client: node scripts/minify-wasm-names.mjs <pkg dir> <lib> <mapping.json>
//
// wasm-bindgen names each import `__wbg_<name>_<16 hex digits>` and each export after its Rust
// function, and both the .wasm and its JS glue spell every name out: about 5 KB of the module,
// and the hex digits do not compress. `wasm-opt --minify-imports-and-exports-and-modules` has
// renamed them in the .wasm (mapping.json is its report); this renames them in the glue and in
// the module's .d.ts to match, then checks that every import of the module is provided by the
// glue and that every export the glue uses exists, so that a wasm-bindgen whose glue looks
// different fails the build instead of the package.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const [dir, lib, mappingFile] = process.argv.slice(2);
const glueFile = path.join(dir, "web.js");
const typesFile = path.join(dir, `${lib}_bg.wasm.d.ts`);
const wasmFile = path.join(dir, `${lib}_bg.wasm`);

// One report per run of the pass (wasm-opt's --converge runs it again; later runs rename
// nothing, but compose them anyway): `{imports: [[module, name, new]], exports: [[name, new]]}`.
const reports = readFileSync(mappingFile, "utf8")
  .split(/^(?=\{$)/m)
  .filter((report) => report.trim())
  .map((report) => JSON.parse(report));
const compose = (kind) => {
  const renames = reports.map((report) => new Map(report[kind].map((e) => [e.at(-2), e.at(-1)])));
  const [first, ...later] = renames;
  for (const step of later) {
    for (const [name, current] of first) first.set(name, step.get(current) ?? current);
  }
  return first;
};
const mapping = {
  imports: [...compose("imports")].map(([name, minified]) => {
    const [oldModule] = reports[0].imports.find((e) => e[1] === name);
    return [oldModule, name, minified];
  }),
  exports: [...compose("exports")],
};
const module = new WebAssembly.Module(readFileSync(wasmFile));
const imports = WebAssembly.Module.imports(module);
const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));

const escape = (s) => s.replace(/[$]/g, "\\$");
let glue = readFileSync(glueFile, "utf8");

// Imports: the keys of the glue's import object, `name: function(...)`.
const moduleNames = new Set(imports.map((i) => i.module));
if (moduleNames.size !== 1) {
  throw new Error(`expected one import module after minifying, found ${[...moduleNames]}`);
}
const [newModule] = moduleNames;
for (const [oldModule, name, minified] of mapping.imports) {
  const key = new RegExp(`(?<=[\\s{,])${escape(name)}(?=:)`, "g");
  const count = (glue.match(key) || []).length;
  if (count !== 1) throw new Error(`import ${name}: ${count} keys in the glue, expected 1`);
  glue = glue.replace(key, () => minified);
  glue = glue.replaceAll(JSON.stringify(oldModule), () => JSON.stringify(newModule));
}

// Exports: every use in the glue is `wasm.name`.
const renamed = new Map(mapping.exports);
glue = glue.replace(/\bwasm\.([A-Za-z_$][\w$]*)/g, (whole, name) => {
  const minified = renamed.get(name);
  if (minified === undefined) throw new Error(`the glue uses wasm.${name}, which was not renamed`);
  return `wasm.${minified}`;
});

// The checks: the glue provides every import under its new name and uses only real exports.
for (const { name } of imports) {
  if (!new RegExp(`(?<=[\\s{,])${escape(name)}(?=:)`).test(glue)) {
    throw new Error(`import ${name} has no key in the rewritten glue`);
  }
}
for (const [, name] of glue.matchAll(/\bwasm\.([A-Za-z_$][\w$]*)/g)) {
  if (!exports.has(name)) throw new Error(`the rewritten glue uses wasm.${name}, not an export`);
}
writeFileSync(glueFile, glue);

// The module's declarations (`export const name: ...`).
let types = readFileSync(typesFile, "utf8");
types = types.replace(/^export const ([\w$]+):/gm, (whole, name) => {
  const minified = renamed.get(name);
  return minified === undefined ? whole : `export const ${minified}:`;
});
writeFileSync(typesFile, types);
