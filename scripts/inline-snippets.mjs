// Run by scripts/build-client:
//   node scripts/inline-snippets.mjs <pkg dir> --keep <name>... --append <file>... --hide <name>...
//
// The hand-written JavaScript modules the wasm imports (`#[wasm_bindgen(module = "/src/...js")]`)
// come out of wasm-bindgen in snippets/, imported by the glue. Each import line is replaced by the
// module itself, so that the package stays one glue module minified as one file (bundling would
// rename the exported classes); the `--append` modules (the API's classes over the glue's own,
// which the wasm does not import) go at the end. The modules' exports become plain declarations,
// but for the `--keep` names (the API's, such as `Push`), which web.js exports; the glue's
// `--hide` classes (`Client`, which only the appended modules use) are no longer exported.
// snippets/ is removed.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const [dir, ...rest] = process.argv.slice(2);
const lists = { keep: [], append: [], hide: [] };
let list = null;
for (const arg of rest) {
  if (arg.startsWith("--")) list = lists[arg.slice(2)];
  else if (list) list.push(arg);
  else throw new Error(`inline-snippets: unexpected argument ${arg}`);
}
const glueFile = path.join(dir, "web.js");
const importLine = /^import \{ ([\w, ]+) \} from '\.\/(snippets\/[^']+)';$/gm;

/** A module's exports as plain declarations, but for the kept names. */
const unexport = (source) =>
  source.replace(/^export (class|function) (\w+)/gm, (declaration, kind, name) =>
    lists.keep.includes(name) ? declaration : `${kind} ${name}`,
  );

let inlined = 0;
let glue = readFileSync(glueFile, "utf8").replace(importLine, (_, names, file) => {
  inlined += 1;
  const source = readFileSync(path.join(dir, file), "utf8");
  for (const name of names.split(", ")) {
    const declared = new RegExp(`^export (class|function) ${name}\\b`, "m");
    if (!declared.test(source)) {
      throw new Error(`inline-snippets: ${file} does not declare \`export class|function ${name}\``);
    }
  }
  return unexport(source);
});
if (/from '\.\/snippets\//.test(glue)) {
  throw new Error("inline-snippets: the glue imports from snippets/ in a way this does not know");
}
for (const name of lists.hide) {
  const declaration = new RegExp(`^export class ${name}\\b`, "m");
  if (!declaration.test(glue)) throw new Error(`inline-snippets: the glue has no \`export class ${name}\``);
  glue = glue.replace(declaration, `class ${name}`);
}
for (const file of lists.append) glue += `\n${unexport(readFileSync(file, "utf8"))}`;
writeFileSync(glueFile, glue);
rmSync(path.join(dir, "snippets"), { recursive: true, force: true });
console.log(`inline-snippets: ${inlined} module(s) inlined into web.js, ${lists.append.length} appended`);
