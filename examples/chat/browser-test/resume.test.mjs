// The chat page's history and resume on one node (its own store), in
// headless Chromium: page x shows the room's history on joining, then
// live messages; its socket is closed from the test (the page reconnects
// by itself, here after 3 s), page y sends two messages meanwhile, and x,
// back, shows them once and nothing twice; live messages follow.
//
//   node resume.test.mjs /path/to/chat
//
// Run by scripts/browser-test.sh. The shared harness is harness.mjs.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HTTP,
  TLS,
  WAIT,
  chatServer,
  check,
  collectErrors,
  logHas,
  roomShows,
  runTest,
  withBrowser,
  withServer,
} from "./harness.mjs";

const CHAT_BIN = process.argv[2];
if (!CHAT_BIN) {
  console.error("usage: node resume.test.mjs /path/to/chat");
  process.exit(2);
}

const STORE = mkdtempSync(join(tmpdir(), "hubbub-chat-resume-"));
const CHAT = chatServer("chat", CHAT_BIN, { STORE_PATH: join(STORE, "chat.db") });

/** roomShows in `general`. */
const showsExactly = (page, label, texts) => roomShows(page, label, "general", texts);

async function send(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

async function main(server) {
  const [httpPort, wsPort] = server.ports;
  await withBrowser({ viewport: { width: 900, height: 760 } }, async (context) => {
    const errors = [];
    const open = async (label) => {
      const page = await context.newPage();
      collectErrors(page, errors, label);
      await page.goto(`${HTTP}://127.0.0.1:${httpPort}/?ws=${wsPort}`, { timeout: WAIT });
      await logHas(page, "joined room: general");
      await page.waitForSelector("#send:not([disabled])", { timeout: WAIT });
      return page;
    };
    const stamp = Date.now();
    const m = (i) => `message ${i} (${stamp})`;

    // y alone sends one; x, opened after it, shows it from the history.
    const y = await open("y");
    await send(y, m(1));
    await showsExactly(y, "y", [m(1)]);
    const x = await open("x");
    await showsExactly(x, "x (history)", [m(1)]);

    // Live on both.
    await send(y, m(2));
    await send(x, m(3));
    await showsExactly(x, "x", [m(1), m(2), m(3)]);
    await showsExactly(y, "y", [m(1), m(2), m(3)]);

    // x's socket closed (it retries after 3 s); y sends 4 and 5 meanwhile.
    await x.evaluate(() => {
      retry = 3000; // the page's reconnect delay (a global of its script)
      socket.close(); // the page's socket: it reconnects on its own
    });
    await logHas(x, "disconnected");
    await send(y, m(4));
    await send(y, m(5));
    await showsExactly(y, "y", [m(1), m(2), m(3), m(4), m(5)]);
    const before = await x.textContent("#log");
    check(!before.includes(m(4)), "x showed message 4 while disconnected");

    // Back: 4 and 5 once, 1 to 3 not again; then live again.
    await x.waitForFunction(
      () => document.getElementById("log").textContent.split("joined room: general").length === 3,
      null,
      { timeout: WAIT },
    );
    await showsExactly(x, "x (resumed)", [m(1), m(2), m(3), m(4), m(5)]);
    await send(y, m(6));
    await send(x, m(7));
    await showsExactly(x, "x", [m(1), m(2), m(3), m(4), m(5), m(6), m(7)]);
    await showsExactly(y, "y", [m(1), m(2), m(3), m(4), m(5), m(6), m(7)]);
    check(errors.length === 0, `errors in the pages: ${errors.join("; ")}`);
  });
}

runTest(TLS ? "browser resume test (TLS)" : "browser resume test", TLS ? "browser (resume, TLS)" : "browser (resume)", () =>
  withServer(CHAT, main),
).finally(() => rmSync(STORE, { recursive: true, force: true }));
