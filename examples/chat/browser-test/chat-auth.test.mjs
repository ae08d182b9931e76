// The chat page in auth mode (AUTH_REQUIRED=true) in headless Chromium:
// `GET /api/login` says so, `POST /api/login` checks the name; two pages
// log in as alice and bob, send the auth message first, and see each
// other's messages with the sender's name; a raw WebSocket that does not
// authenticate (or sends a bad token) is closed with 1008 and its early
// message is never processed; `POST /ws/send` needs the bearer token.
//
//   node chat-auth.test.mjs /path/to/chat [screenshot.png]
//
// With BROWSER_TLS_* set (harness.mjs, `TLS`) it runs over `https://` and
// `wss://`.
//
// Run by scripts/browser-test.sh. The shared harness is harness.mjs.

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
const SCREENSHOT = process.argv[3] || "/tmp/hubbub-chat-auth.png";

if (!CHAT_BIN) {
  console.error("usage: node chat-auth.test.mjs /path/to/chat [screenshot.png]");
  process.exit(2);
}

const STORE = mkdtempSync(join(tmpdir(), "hubbub-chat-auth-"));

/** `chat` in examples/chat/ on two free ports: the page's, the chat's. */
const CHAT = chatServer("chat (auth)", CHAT_BIN, {
  AUTH_REQUIRED: "true",
  AUTH_JWT_SECRET: "browser-test-secret",
  AUTH_TIMEOUT: "2",
  STORE_PATH: join(STORE, "chat.db"),
});

async function json(response) {
  return { status: response.status, body: await response.json() };
}

async function main(server) {
  const [httpPort, wsPort] = server.ports;
  const base = `${HTTP}://127.0.0.1:${httpPort}`;
  console.log(`chat (auth) on ${base}/ and ${WS}://127.0.0.1:${wsPort}/`);

  // The login contract, from outside the browser.
  const mode = await json(await fetch(`${base}/api/login`));
  check(mode.status === 200 && mode.body.auth_required === true, `GET /api/login: ${JSON.stringify(mode)}`);
  const post = (body) =>
    fetch(`${base}/api/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(json);
  const empty = await post({ name: "" });
  check(empty.status === 400 && /empty/.test(empty.body.error), `empty name: ${JSON.stringify(empty)}`);
  const long = await post({ name: "x".repeat(33) });
  check(long.status === 400 && /32/.test(long.body.error), `long name: ${JSON.stringify(long)}`);
  const carol = await post({ name: "carol" });
  check(carol.status === 200 && carol.body.user === "carol" && carol.body.token.split(".").length === 3,
    `login: ${JSON.stringify(carol)}`);
  const health = await (await fetch(`${base}/api/health`)).text();
  check(health === '{"ok":true,"service":"websocket-chat"}', `health: ${health}`);

  await withBrowser({ viewport: { width: 900, height: 820 } }, async (context) => {
    const errors = [];
    const open = async (name) => {
      const page = await context.newPage();
      collectErrors(page, errors, name);
      await page.goto(`${base}/?ws=${wsPort}`, { timeout: WAIT });
      await page.waitForSelector("#loginbar:not([hidden])", { timeout: WAIT });
      await page.fill("#name", name);
      await page.click("#login");
      await logHas(page, `signed in as ${name}`);
      await logHas(page, "welcome to hubbub chat");
      await logHas(page, "joined room: general");
      return page;
    };
    const alice = await open("alice");
    check(!(await alice.isVisible("#loginbar")), "the login bar is hidden once logged in");
    const bob = await open("bob");

    // Not authenticated: the early message is not processed, and the
    // session is closed 1008 at the deadline; a bad token at once.
    const raw = (first) =>
      alice.evaluate(
        ([url, first, wait]) =>
          new Promise((resolve) => {
            const ws = new WebSocket(url);
            const timer = setTimeout(() => resolve("no close"), wait);
            ws.onopen = () => ws.send(first);
            ws.onclose = (e) => {
              clearTimeout(timer);
              resolve(`${e.code} ${e.reason}`);
            };
          }),
        [`${WS}://127.0.0.1:${wsPort}/`, first, WAIT],
      );
    const early = JSON.stringify({ type: "chat.message", payload: { room: "general", text: "sneaky" } });
    const timedOut = await raw(early);
    check(timedOut === "1008 authentication timeout", `no auth: ${timedOut}`);
    const forged = await raw(JSON.stringify({ type: "auth", payload: { token: "a.b.c" } }));
    check(forged === "1008 invalid token: malformed", `bad token: ${forged}`);

    await alice.fill("#message", "hello from alice");
    await alice.click("#send");
    for (const page of [alice, bob]) await logHas(page, "room general: alice: hello from alice");
    const sender = await bob.textContent("#log .room .who");
    check(sender === "alice", `the sender is shown: ${sender}`);

    // HTTP sends: the bearer token names the sender.
    const send = (token) =>
      fetch(`${base}/ws/send`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ type: "chat.message", room: "general", payload: { text: "via http" } }),
      });
    const anonymous = await send(null);
    check(anonymous.status === 401, `/ws/send without a token: ${anonymous.status}`);
    const signed = await send(carol.body.token);
    check(signed.status === 202, `/ws/send with a token: ${signed.status}`);
    await logHas(bob, "room general: carol: via http");

    const log = await alice.textContent("#log");
    check(!log.includes("sneaky"), "a message before auth was processed");
    await alice.screenshot({ path: SCREENSHOT });
    check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  });
}

const [name, tally] = TLS
  ? ["browser auth test (TLS)", "browser (auth, TLS)"]
  : ["browser auth test", "browser (auth)"];
runTest(name, tally, () => withServer(CHAT, main)).finally(() =>
  rmSync(STORE, { recursive: true, force: true }),
);
