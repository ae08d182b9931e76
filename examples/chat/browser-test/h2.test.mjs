// The chat page over HTTP/2 in a real headless browser (Debian's Chromium,
// driven by playwright-core): `chat` on one shared TLS port (the page, the
// routes and the WebSockets), its ALPN offering `h2` (the chat's `HTTP2`
// setting, on by default). Two pages join `general` and chat with each
// other; the page, a route fetched from it and both WebSockets went over
// HTTP/2: the navigation's `nextHopProtocol` is `h2`, and the server's
// /metrics counts the WebSockets opened by extended CONNECT (RFC 8441,
// `hubbub_ws_connections_h2_total`). Node's own fetch of /metrics is
// HTTP/1.1 on the same port.
//
//   node h2.test.mjs /path/to/chat
//
// Needs BROWSER_TLS_* (harness.mjs, `TLS`): scripts/browser-test.sh runs
// it in its https:// part. Chromium opens a WebSocket over HTTP/2 when it
// already has an HTTP/2 connection to the socket's host and port whose
// SETTINGS enable extended CONNECT (no flag is needed): hence one shared
// port, the page loaded first.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  TLS,
  WAIT,
  chatServer,
  check,
  collectErrors,
  logHas,
  runTest,
  withBrowser,
  withServer,
} from "./harness.mjs";

const CHAT_BIN = process.argv[2];

if (!CHAT_BIN || !TLS) {
  console.error("usage: BROWSER_TLS_CERT=.. BROWSER_TLS_KEY=.. BROWSER_TLS_SPKI=.. node h2.test.mjs /path/to/chat");
  process.exit(2);
}

/** A free loopback port (asked of the system, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** The value of the metric line starting with `name ` (`null` if none). */
function metric(text, name) {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? null : Number(line.slice(name.length + 1));
}

/** GET /metrics with Node's fetch (HTTP/1.1, trusting the test CA). */
async function metrics(port) {
  const response = await fetch(`https://127.0.0.1:${port}/metrics`, {
    signal: AbortSignal.timeout(WAIT),
  });
  check(response.status === 200, `/metrics answered ${response.status}`);
  return response.text();
}

const STORE = mkdtempSync(join(tmpdir(), "hubbub-chat-h2-"));

async function joinRoom(page, room) {
  await page.fill("#room", room);
  await page.click("#join");
  await logHas(page, `joined room: ${room}`);
}

async function main(port) {
  // One shared port: the same port twice (port 0 twice would be two).
  const spec = chatServer("chat h2", CHAT_BIN, {
    STORE_PATH: join(STORE, "chat.db"),
    SERVER_PORT: String(port),
    WEBSOCKET_PORT: String(port),
    HTTP2: "on",
  });
  await withServer(spec, async (server) => {
    check(
      server.ports.every((p) => p === port),
      `not one shared port: ${server.ports.join(", ")}`,
    );
    const before = metric(await metrics(port), "hubbub_ws_connections_h2_total");
    check(before === 0, `h2 sessions before the pages: ${before}`);
    console.log(`chat on https://127.0.0.1:${port}/ (one shared port, ALPN h2 and http/1.1)`);
    await withBrowser({ viewport: { width: 900, height: 760 } }, async (context) => {
      const errors = [];
      const open = async (name) => {
        const page = await context.newPage();
        collectErrors(page, errors, name);
        await page.goto(`https://127.0.0.1:${port}/?ws=${port}`, { timeout: WAIT });
        return page;
      };
      const [a, b] = [await open("a"), await open("b")];
      for (const page of [a, b]) {
        await logHas(page, "welcome to hubbub chat");
        await page.waitForSelector("#send:not([disabled])", { timeout: WAIT });
      }
      // The page came over HTTP/2, and so does a route fetched from it.
      for (const page of [a, b]) {
        const protocols = await page.evaluate(async () => {
          const health = await fetch("/api/health");
          await health.json();
          const url = new URL("/api/health", location.href).href;
          return {
            page: performance.getEntriesByType("navigation")[0].nextHopProtocol,
            route: performance.getEntriesByName(url)[0]?.nextHopProtocol,
            status: health.status,
          };
        });
        check(protocols.page === "h2", `the page came over ${protocols.page}`);
        check(protocols.route === "h2", `/api/health came over ${protocols.route}`);
        check(protocols.status === 200, `/api/health answered ${protocols.status}`);
      }
      await joinRoom(a, "general");
      await joinRoom(b, "general");
      const text = `hello over h2 ${Date.now()}`;
      await a.fill("#message", text);
      await a.click("#send");
      await logHas(a, `room general: ${text}`);
      await logHas(b, `room general: ${text}`);
      await b.fill("#message", "and back from B");
      await b.press("#message", "Enter");
      await logHas(a, "room general: and back from B");

      // The server saw both WebSockets arrive by extended CONNECT.
      const after = await metrics(port);
      const h2 = metric(after, "hubbub_ws_connections_h2_total");
      const all = metric(after, "hubbub_ws_connections_total");
      console.log(`WebSocket sessions: ${all}, over HTTP/2: ${h2}`);
      check(h2 >= 2, `hubbub_ws_connections_h2_total is ${h2}, not at least 2`);
      check(errors.length === 0, `errors in the pages: ${errors.join("; ")}`);
    });
  });
}

runTest("browser test (HTTP/2)", "browser (HTTP/2)", async () => main(await freePort())).finally(
  () => rmSync(STORE, { recursive: true, force: true }),
);
