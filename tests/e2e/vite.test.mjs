// The client as a new user installs it: `scripts/pack-client`'s tarball into a fresh Vite 8 +
// TypeScript project in a temporary directory. `vite build` (served by `vite preview`) and the
// dev server each load the .wasm in Chromium and join `room:lobby` on the demo; the README's
// TypeScript examples compile under `strict` against the installed package.
//
// Offline: the tarball has no dependencies, and Vite and TypeScript are linked from the
// repository's node_modules (`npm ci`), so `npm install --offline` needs nothing from the network.
// Build first: `scripts/build-client` and `cargo build -p alight-demo`.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { spawnServer } from "../support/process.mjs";
import {
  REPO_ROOT,
  launchBrowser,
  newContext,
  removeDataDir,
  startDemo,
  tempDataDir,
} from "./helpers.mjs";

/** How long a Vite command may take on the small shared machine. */
const VITE_MS = 120000;

let work;
let project;
let dataDir;
let demo;
let browser;

/** Runs `command` in the project; throws with its output when it fails. */
function run(command, args, options = {}) {
  return execFileSync(command, args, {
    cwd: project,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
    timeout: VITE_MS,
    ...options,
  });
}

/** The README's code blocks fenced as ```ts that use the package (not the Vite config). */
function readmeExamples() {
  const readme = readFileSync(path.join(REPO_ROOT, "client-wasm", "README.md"), "utf8");
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)]
    .map((match) => match[1])
    .filter((code) => code.includes('from "@alight/client"'));
}

/** A port nothing listens on now (Vite takes a fixed port; `--strictPort` fails if it is taken). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * `vite <args>` (which name the project as Vite's root: the server runs in the repository's
 * directory) on a free port; resolves with `{url, stop}` once it printed its address.
 */
async function vite(args) {
  const port = await freePort();
  const server = await spawnServer({
    bin: process.execPath,
    args: [
      path.join(project, "node_modules", "vite", "bin", "vite.js"),
      ...args,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--strictPort",
    ],
    env: { NO_COLOR: "1" },
    ready: /Local:\s+http:\/\/127\.0\.0\.1:(\d+)\//,
    stop: "SIGTERM",
    readyMs: VITE_MS,
  });
  return { url: `http://127.0.0.1:${server.port}/`, stop: () => server.stop() };
}

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), "alight-vite-"));
  project = path.join(work, "project");
  mkdirSync(path.join(project, "src"), { recursive: true });
  const tarball = execFileSync(path.join(REPO_ROOT, "scripts", "pack-client"), [work], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, ALIGHT_SKIP_BUILD: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  })
    .trim()
    .split("\n")
    .at(-1);

  writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({ name: "alight-vite-check", private: true, type: "module" }, null, 2),
  );
  writeFileSync(
    path.join(project, "index.html"),
    `<!doctype html>
<html><head><meta charset="utf-8"><title>Vite check</title></head>
<body><p id="status">loading</p><script type="module" src="/src/main.ts"></script></body></html>
`,
  );
  // What a user writes: the package's main entry, top-level await and all, in TypeScript.
  writeFileSync(
    path.join(project, "src", "main.ts"),
    `import { Socket, protocolVersion } from "@alight/client";

const status = document.getElementById("status")!;
const endpoint = new URL(location.href).searchParams.get("socket") ?? "/socket";
const socket = new Socket(endpoint);
socket.connect();
const channel = socket.channel("room:lobby", { name: "vite" });
channel
  .join()
  .receive("ok", () => {
    status.textContent = \`joined with protocol \${protocolVersion()}\`;
    status.dataset.joined = "yes";
  })
  .receive("error", (response: { reason?: string }) => {
    status.textContent = \`refused: \${response.reason ?? "no reason"}\`;
  });
`,
  );
  writeFileSync(
    path.join(project, "tsconfig.json"),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          target: "es2022",
          module: "esnext",
          moduleResolution: "bundler",
          lib: ["es2022", "dom"],
          noEmit: true,
          skipLibCheck: false,
        },
        include: ["src"],
      },
      null,
      2,
    ),
  );
  readmeExamples().forEach((code, i) => {
    writeFileSync(path.join(project, "src", `readme-${i + 1}.ts`), `export {};\n${code}`);
  });
  const root = (name) => path.join(REPO_ROOT, "node_modules", name);
  run("npm", [
    "install",
    "--offline",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    tarball,
    root("vite"),
    root("typescript"),
  ]);

  dataDir = tempDataDir();
  demo = await startDemo({ dataDir });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  if (dataDir) removeDataDir(dataDir);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Opens `url` in Chromium and waits until the page joined `room:lobby` on the demo. */
async function joins(url) {
  const context = await newContext(browser);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  const wasm = [];
  page.on("response", (response) => {
    if (response.url().includes(".wasm")) wasm.push(response.status());
  });
  const socketUrl = `ws://127.0.0.1:${demo.port}/socket`;
  await page.goto(`${url}?socket=${encodeURIComponent(socketUrl)}`);
  await page.waitForSelector('#status[data-joined="yes"]', { timeout: VITE_MS / 4 });
  assert.match(await page.textContent("#status"), /^joined with protocol 2\.0\.0$/);
  assert.deepEqual(wasm, [200], "the .wasm was fetched once");
  assert.deepEqual(errors, []);
  await context.close();
}

test("the tarball installs by itself, with what package.json promises", () => {
  const pkg = JSON.parse(
    readFileSync(path.join(project, "node_modules", "@alight", "client", "package.json"), "utf8"),
  );
  assert.equal(pkg.name, "@alight/client");
  assert.match(pkg.version, /^\d+\.\d+\.\d+/);
  assert.equal(pkg.license, "MIT OR Apache-2.0");
  assert.ok(pkg.repository?.url, "a repository");
  assert.equal(pkg.publishConfig?.access, "public", "a scoped package is public when published");
  const installed = readdirSync(path.join(project, "node_modules", "@alight", "client")).sort();
  assert.deepEqual(installed, [...pkg.files, "package.json"].sort());
});

test("the README's TypeScript examples and a Vite app's main.ts compile under strict", () => {
  assert.ok(readmeExamples().length >= 2, "the README has ```ts examples");
  const tsc = path.join(project, "node_modules", "typescript", "bin", "tsc");
  try {
    run(process.execPath, [tsc, "-p", "tsconfig.json"]);
  } catch (err) {
    assert.fail(`tsc --strict failed:\n${err.stdout}${err.stderr}`);
  }
});

test("vite build: the built app loads the .wasm and joins a channel in Chromium", async () => {
  const output = run(process.execPath, [
    path.join(project, "node_modules", "vite", "bin", "vite.js"),
    "build",
  ]);
  assert.match(output, /\.wasm/, `the .wasm is emitted as an asset:\n${output}`);
  const preview = await vite(["preview", project]);
  try {
    await joins(preview.url);
  } finally {
    await preview.stop();
  }
});

test("vite dev server: the app loads the .wasm and joins a channel in Chromium", async () => {
  const dev = await vite([project]);
  try {
    await joins(dev.url);
  } finally {
    await dev.stop();
  }
});
