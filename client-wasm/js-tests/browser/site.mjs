// The packed package served beside a test page on 127.0.0.1, for the tests of this directory.
//
// The package is ALIGHT_CLIENT_PKG (scripts/test-client sets it to the packed and installed
// package), else client-wasm/pkg (`scripts/build-client`).

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

import { REPO_ROOT } from "../../../tests/node/helpers.mjs";

const PKG = process.env.ALIGHT_CLIENT_PKG ?? path.join(REPO_ROOT, "client-wasm", "pkg");

const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm" };

/** Serves `page` (HTML) at / and the package's files beside it; `{server, url}`. */
export async function servePackage(page) {
  const server = http.createServer(async (req, res) => {
    const name = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (name === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(page);
      return;
    }
    const file = path.join(PKG, path.normalize(name));
    try {
      if (!file.startsWith(PKG + path.sep)) throw new Error("outside the package");
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
      });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}
