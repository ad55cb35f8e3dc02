// Run by scripts/build-client: node scripts/inline-snippets.mjs <pkg dir> <name to keep exported>...
//
// The hand-written JavaScript modules the wasm imports (`#[wasm_bindgen(module = "/src/...js")]`)
// come out of wasm-bindgen in snippets/, imported by the glue. Each import line is replaced by the
// module itself, so that the package stays one glue module minified as one file (bundling would
// rename the exported classes); the modules' exports become plain declarations, but for the
// names given (the API's, such as `Push`), which web.js exports. snippets/ is removed.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const [dir, ...keep] = process.argv.slice(2);
const glueFile = path.join(dir, "web.js");
const importLine = /^import \{ ([\w, ]+) \} from '\.\/(snippets\/[^']+)';$/gm;

let inlined = 0;
const glue = readFileSync(glueFile, "utf8").replace(importLine, (_, names, file) => {
  inlined += 1;
  const source = readFileSync(path.join(dir, file), "utf8");
  for (const name of names.split(", ")) {
    const declared = new RegExp(`^export (class|function) ${name}\\b`, "m");
    if (!declared.test(source)) {
      throw new Error(`inline-snippets: ${file} does not declare \`export class|function ${name}\``);
    }
  }
  return source.replace(/^export (class|function) (\w+)/gm, (declaration, kind, name) =>
    keep.includes(name) ? declaration : `${kind} ${name}`,
  );
});
if (/from '\.\/snippets\//.test(glue)) {
  throw new Error("inline-snippets: the glue imports from snippets/ in a way this does not know");
}
writeFileSync(glueFile, glue);
rmSync(path.join(dir, "snippets"), { recursive: true, force: true });
console.log(`inline-snippets: ${inlined} module(s) inlined into web.js`);
