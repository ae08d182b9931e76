// The chat page in a real headless browser (Debian's Chromium, driven by
// playwright-core): start `chat` on free ports, open two pages, both join
// `general`, one sends, both logs show `room general: <text>`; a third page
// in another room does not. Chromium negotiates permessage-deflate
// (`ws.extensions`) and a large message round-trips compressed. Saves a
// screenshot.
//
//   node chat.test.mjs /path/to/chat [screenshot.png]
//
// Run by scripts/browser-test.sh, which installs and builds what it needs.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const CHAT_BIN = process.argv[2];
const SCREENSHOT = process.argv[3] || "/tmp/hubbub-chat.png";
const CHAT_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15_000; // ms, for anything the test waits on

if (!CHAT_BIN) {
  console.error("usage: node chat.test.mjs /path/to/chat [screenshot.png]");
  process.exit(2);
}

// The whole test is bounded, whatever hangs.
const watchdog = setTimeout(() => {
  console.error("browser test: timed out after 120 s");
  process.exit(1);
}, 120_000);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Start `chat` in examples/chat/ on free ports; resolve with its ports. */
function startChat() {
  const child = spawn(CHAT_BIN, [], {
    cwd: CHAT_DIR,
    env: {
      ...process.env,
      SERVER_HOST: "127.0.0.1",
      SERVER_PORT: "0",
      WEBSOCKET_HOST: "127.0.0.1",
      WEBSOCKET_PORT: "0",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let started = false;
    const timer = setTimeout(() => reject(new Error("chat printed no `listening` line")), WAIT);
    child.on("exit", (code) => reject(new Error(`chat exited early (${code})`)));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      if (started) return; // later output (joins, leaves) is not needed
      out += chunk;
      const line = out.split("\n").find((l) => l.includes("listening"));
      if (!line) return;
      const ports = [...line.matchAll(/:\/\/[^ /]*:(\d+)/g)].map((m) => Number(m[1]));
      started = true;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      if (ports.length !== 2) reject(new Error(`no ports in ${JSON.stringify(line)}`));
      else resolve({ child, http: ports[0], ws: ports[1] });
    });
  });
}

/** Resolves with the exit code once `child` exits (bounded). */
function stop(child) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("chat did not exit on SIGTERM")), WAIT);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
    child.kill("SIGTERM");
  });
}

const logHas = (page, text) =>
  page.waitForFunction(
    (t) => document.getElementById("log").textContent.includes(t),
    text,
    { timeout: WAIT },
  );

async function joinRoom(page, room) {
  await page.fill("#room", room);
  await page.click("#join");
  await logHas(page, `joined room: ${room}`);
}

async function main() {
  const chat = await startChat();
  console.log(`chat on http://127.0.0.1:${chat.http}/ and ws://127.0.0.1:${chat.ws}/`);
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
      viewport: { width: 900, height: 760 },
      timeout: 60_000,
    });
    const errors = [];
    const open = async (name, query, { watchErrors = true } = {}) => {
      const page = await context.newPage();
      if (watchErrors) {
        page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
        page.on("console", (m) => m.type() === "error" && errors.push(`${name}: ${m.text()}`));
      }
      await page.goto(`http://127.0.0.1:${chat.http}/${query}`, { timeout: WAIT });
      return page;
    };

    // Opened without `?ws=`, the page aims at port 9090 of the same host
    // (where nothing may listen: its connection errors are expected).
    const plain = await open("plain", "", { watchErrors: false });
    const endpoint = await plain.textContent("#endpoint");
    check(endpoint === "ws://127.0.0.1:9090/", `default endpoint is ${endpoint}`);
    await plain.close();

    const [a, b, c] = [
      await open("a", `?ws=${chat.ws}`),
      await open("b", `?ws=${chat.ws}`),
      await open("c", `?ws=${chat.ws}`),
    ];
    for (const page of [a, b, c]) {
      await logHas(page, "welcome to hubbub chat");
      await page.waitForSelector("#send:not([disabled])", { timeout: WAIT });
    }
    await joinRoom(a, "general");
    await joinRoom(b, "general");
    await joinRoom(c, "elsewhere");

    const text = `hello from page A ${Date.now()}`;
    await a.fill("#message", text);
    await a.click("#send");
    await logHas(a, `room general: ${text}`);
    await logHas(b, `room general: ${text}`);

    // The other way, with the Enter key.
    await b.fill("#message", "and hello back from B");
    await b.press("#message", "Enter");
    await logHas(a, "room general: and hello back from B");
    await logHas(b, "room general: and hello back from B");

    // c, in another room, saw neither; its own room works.
    await c.fill("#message", "only for elsewhere");
    await c.click("#send");
    await logHas(c, "room elsewhere: only for elsewhere");
    const cLog = await c.textContent("#log");
    check(!cLog.includes("room general:"), `page c saw general: ${cLog}`);
    const aLog = await a.textContent("#log");
    check(!aLog.includes("only for elsewhere"), `page a saw elsewhere: ${aLog}`);

    // permessage-deflate (on by default in the chat's settings): Chromium
    // negotiates it, and a message above the compression threshold goes
    // both ways (the server names an unknown type in its answer).
    const probe = await a.evaluate(async (port) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("probe socket failed"));
      });
      const type = `probe.${"x".repeat(2000)}`;
      const reply = new Promise((resolve) =>
        ws.addEventListener("message", (event) => {
          if (event.data.includes(type)) resolve(true);
        }),
      );
      ws.send(JSON.stringify({ type, payload: {} }));
      const same = await Promise.race([
        reply,
        new Promise((resolve) => setTimeout(() => resolve(false), 10_000)),
      ]);
      const extensions = ws.extensions;
      ws.close();
      return { extensions, same };
    }, chat.ws);
    check(
      probe.extensions.startsWith("permessage-deflate"),
      `ws.extensions is ${JSON.stringify(probe.extensions)}`,
    );
    check(probe.same, "the 2 KiB type did not come back intact");
    console.log(`ws.extensions: ${probe.extensions}`);

    await a.bringToFront();
    await a.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${SCREENSHOT}`);
    check(errors.length === 0, `errors in the pages: ${errors.join("; ")}`);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    const code = await stop(chat.child);
    check(code === 0, `chat exited with ${code} on SIGTERM`);
  }
}

main().then(
  () => {
    clearTimeout(watchdog);
    console.log("browser: 1 passed, 0 failed");
  },
  (error) => {
    clearTimeout(watchdog);
    console.error(`browser test failed: ${error.stack || error}`);
    console.log("browser: 0 passed, 1 failed");
    process.exitCode = 1;
  },
);
