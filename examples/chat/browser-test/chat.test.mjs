// The chat page in a real headless browser (Debian's Chromium, driven by
// playwright-core): start `chat` on free ports, open two pages, both join
// `general`, see each other in its presence list, one sends, both logs show
// `room general: <text>`; a third page in another room does not. Chromium negotiates permessage-deflate
// (`ws.extensions`) and a large message round-trips compressed. Saves a
// screenshot.
//
//   node chat.test.mjs /path/to/chat [screenshot.png]
//
// With BROWSER_TLS_* set (harness.mjs, `TLS`) the same test runs over
// `https://` and `wss://`: the server gets the certificate, Chromium
// trusts its key.
//
// Run by scripts/browser-test.sh, which installs and builds what it needs.
// The shared harness (server, browser, watchdog) is harness.mjs.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HTTP,
  TLS,
  WAIT,
  WS,
  chatServer,
  check,
  collectErrors,
  logHas,
  runTest,
  withBrowser,
  withServer,
} from "./harness.mjs";

const CHAT_BIN = process.argv[2];
const SCREENSHOT = process.argv[3] || "/tmp/hubbub-chat.png";

if (!CHAT_BIN) {
  console.error("usage: node chat.test.mjs /path/to/chat [screenshot.png]");
  process.exit(2);
}

/** A history of its own, empty at the start (the page shows history). */
const STORE = mkdtempSync(join(tmpdir(), "hubbub-chat-"));

/** `chat` in examples/chat/ on two free ports: the page's, the chat's. */
const CHAT = chatServer("chat", CHAT_BIN, { STORE_PATH: join(STORE, "chat.db") });

async function joinRoom(page, room) {
  await page.fill("#room", room);
  await page.click("#join");
  await logHas(page, `joined room: ${room}`);
}

async function main(server) {
  const [httpPort, wsPort] = server.ports;
  console.log(`chat on ${HTTP}://127.0.0.1:${httpPort}/ and ${WS}://127.0.0.1:${wsPort}/`);
  await withBrowser({ viewport: { width: 900, height: 760 } }, async (context) => {
    const errors = [];
    const open = async (name, query, { watchErrors = true } = {}) => {
      const page = await context.newPage();
      if (watchErrors) collectErrors(page, errors, name);
      await page.goto(`${HTTP}://127.0.0.1:${httpPort}/${query}`, { timeout: WAIT });
      return page;
    };

    // Opened without `?ws=`, the page aims at port 9090 of the same host,
    // with `wss://` when it was loaded over `https://` (nothing may listen
    // there: its connection errors are expected).
    const plain = await open("plain", "", { watchErrors: false });
    const endpoint = await plain.textContent("#endpoint");
    check(endpoint === `${WS}://127.0.0.1:9090/`, `default endpoint is ${endpoint}`);
    await plain.close();

    const [a, b, c] = [
      await open("a", `?ws=${wsPort}`),
      await open("b", `?ws=${wsPort}`),
      await open("c", `?ws=${wsPort}`),
    ];
    for (const page of [a, b, c]) {
      await logHas(page, "welcome to hubbub chat");
      await page.waitForSelector("#send:not([disabled])", { timeout: WAIT });
    }
    await joinRoom(a, "general");
    await joinRoom(b, "general");
    await joinRoom(c, "elsewhere");

    // Presence: a and b see each other in general's list (two members),
    // c sees only itself in elsewhere.
    const members = (page) =>
      page.$$eval("#presence .member", (chips) => chips.map((chip) => chip.title));
    for (const [page, count] of [[a, 2], [b, 2], [c, 1]]) {
      await page.waitForFunction(
        (n) => document.querySelectorAll("#presence .member").length === n,
        count,
        { timeout: WAIT },
      );
    }
    const [inA, inB] = [await members(a), await members(b)];
    check(
      JSON.stringify(inA) === JSON.stringify(inB),
      `a and b list different members: ${inA} / ${inB}`,
    );
    check(inA.every((t) => / on /.test(t)), `presence entries name their node: ${inA}`);

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
    const probe = await a.evaluate(async (url) => {
      const ws = new WebSocket(url);
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
    }, `${WS}://127.0.0.1:${wsPort}/`);
    check(
      probe.extensions.startsWith("permessage-deflate"),
      `ws.extensions is ${JSON.stringify(probe.extensions)}`,
    );
    check(probe.same, "the 2 KiB type did not come back intact");
    console.log(`ws.extensions: ${probe.extensions}`);

    // Over TLS, the page really is on https:// and its socket on wss://.
    const where = await a.evaluate(() => [location.protocol, document.getElementById("endpoint").textContent]);
    check(where[0] === `${HTTP}:` && where[1].startsWith(`${WS}://`), `page on ${where.join(" ")}`);

    await a.bringToFront();
    await a.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${SCREENSHOT}`);
    check(errors.length === 0, `errors in the pages: ${errors.join("; ")}`);
  });
}

runTest(TLS ? "browser test (TLS)" : "browser test", TLS ? "browser (TLS)" : "browser", () =>
  withServer(CHAT, main),
).finally(() => rmSync(STORE, { recursive: true, force: true }));
