// Run by scripts/build-client:
//   node scripts/join-modules.mjs <out.js> --keep <name>... <module.js>...
//
// Joins the browser package's modules into one (web.js), in the order given, so that it is
// minified as one file (bundling would rename the exported classes): each module's `export class`
// and `export function` (`export default` too) become plain declarations, but for the `--keep`
// names, which the joined module exports. Fails on any other kind of export or on an import, which
// a joined module could not keep.
import { readFileSync, writeFileSync } from "node:fs";

const [out, ...rest] = process.argv.slice(2);
const keep = [];
const files = [];
let list = files;
for (const arg of rest) {
  if (arg === "--keep") list = keep;
  else if (arg.startsWith("--")) throw new Error(`join-modules: unknown option ${arg}`);
  else if (list === keep && arg.endsWith(".js")) (list = files).push(arg);
  else list.push(arg);
}

let joined = "";
for (const file of files) {
  let source = readFileSync(file, "utf8");
  if (/^import\b/m.test(source)) throw new Error(`join-modules: ${file} imports; the joined module cannot`);
  source = source.replace(
    /^export (default )?(async )?(class|function) (\w+)/gm,
    (declaration, isDefault, isAsync, kind, name) =>
      keep.includes(name) ? declaration : `${isAsync ?? ""}${kind} ${name}`,
  );
  const left = /^export\b(?! (default )?(async )?(class|function) )/m.exec(source);
  if (left) throw new Error(`join-modules: ${file} has an export this cannot join: ${left.input.slice(left.index, left.index + 60)}`);
  joined += `${source}\n`;
}
writeFileSync(out, joined);
console.log(`join-modules: ${files.length} modules into ${out}`);
