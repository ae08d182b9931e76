// The axum-echo page in a real headless browser (Debian's Chromium, driven
// by playwright-core): start `axum-echo --deflate` on a free port, open its
// page at `/`, whose script sends a message to `/ws` and shows the echo;
// then, from the page, a 64 KiB message round-trips over the negotiated
// permessage-deflate. `axum-echo` exits 0 on SIGTERM.
//
//   node axum.test.mjs /path/to/axum-echo
//
// Run by scripts/browser-test.sh, after the chat test.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BIN = process.argv[2];
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15_000; // ms, for anything the test waits on

if (!BIN) {
  console.error("usage: node axum.test.mjs /path/to/axum-echo");
  process.exit(2);
}

// The whole test is bounded, whatever hangs.
const watchdog = setTimeout(() => {
  console.error("axum browser test: timed out after 120 s");
  process.exit(1);
}, 120_000);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Start `axum-echo --deflate` on a free port; resolve with its port. */
function start() {
  const child = spawn(BIN, ["--port", "0", "--deflate"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("no `listening` line")), WAIT);
    child.on("exit", (code) => reject(new Error(`axum-echo exited early (${code})`)));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = out.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      child.stdout.removeAllListeners("data");
      resolve({ child, port: Number(match[1]) });
    });
  });
}

/** Resolves with the exit code once `child` exits (bounded). */
function stop(child) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("axum-echo did not exit on SIGTERM")), WAIT);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
    child.kill("SIGTERM");
  });
}

async function main() {
  const server = await start();
  console.log(`axum-echo on http://127.0.0.1:${server.port}/`);
  const profile = mkdtempSync(join(tmpdir(), "hubbub-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 60_000,
    });
    const errors = [];
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`http://127.0.0.1:${server.port}/`, { timeout: WAIT });

    // The page's own script: one message to /ws, the echo shown.
    await page.waitForFunction(
      () => document.getElementById("echo").textContent !== "",
      null,
      { timeout: WAIT },
    );
    const shown = await page.textContent("#echo");
    check(shown === "hello from the browser", `the page shows ${JSON.stringify(shown)}`);

    // permessage-deflate: negotiated, and a large message comes back intact.
    const probe = await page.evaluate(async () => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("probe socket failed"));
      });
      const text = "axum ".repeat(13_108);
      const reply = new Promise((resolve) => (ws.onmessage = (event) => resolve(event.data)));
      ws.send(text);
      const echoed = await Promise.race([
        reply,
        new Promise((resolve) => setTimeout(() => resolve(null), 10_000)),
      ]);
      const extensions = ws.extensions;
      ws.close(1000);
      return { extensions, same: echoed === text };
    });
    check(
      probe.extensions.startsWith("permessage-deflate"),
      `ws.extensions is ${JSON.stringify(probe.extensions)}`,
    );
    check(probe.same, "the 64 KiB message did not come back intact");
    console.log(`echo shown: ${shown}; ws.extensions: ${probe.extensions}`);
    check(errors.length === 0, `errors in the page: ${errors.join("; ")}`);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    const code = await stop(server.child);
    check(code === 0, `axum-echo exited with ${code} on SIGTERM`);
  }
}

main().then(
  () => {
    clearTimeout(watchdog);
    console.log("axum-browser: 1 passed, 0 failed");
  },
  (error) => {
    clearTimeout(watchdog);
    console.error(`axum browser test failed: ${error.stack || error}`);
    console.log("axum-browser: 0 passed, 1 failed");
    process.exitCode = 1;
  },
);
