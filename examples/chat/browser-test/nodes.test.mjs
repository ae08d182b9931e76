// Two chat nodes sharing rooms over Redis, a page on each, in headless
// Chromium: a redis-server on a free loopback port, node `a` (tokio) and
// node `b` (mio) with its REDIS_URL, PRESENCE_EVENTS=true and
// PRESENCE_TTL=3. Both pages join `general`; what one sends the other
// shows; each lists both members (on nodes a and b). Node b is stopped, page 1 sends two more, and node
// `b2` (mio) starts on b's WebSocket port: page 2 reconnects to it and
// resumes, showing the missed messages once and nothing twice. A page
// opened on node a after page 2 closed shows the room's history. Last,
// Redis loses everything (FLUSHALL) while a page's node is down: back on a
// new node, the page sees another epoch and starts again from history.
//
//   node nodes.test.mjs /path/to/chat /path/to/redis-server
//
// Run by scripts/browser-test.sh. The shared harness is harness.mjs.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HTTP,
  WAIT,
  chatServer,
  check,
  collectErrors,
  logHas,
  roomShows,
  runTest,
  startServer,
  stopServer,
  withBrowser,
} from "./harness.mjs";

const [CHAT_BIN, REDIS_SERVER] = process.argv.slice(2);
if (!CHAT_BIN || !REDIS_SERVER) {
  console.error("usage: node nodes.test.mjs /path/to/chat /path/to/redis-server");
  process.exit(2);
}

const DIR = mkdtempSync(join(tmpdir(), "hubbub-chat-nodes-"));

/** A free loopback port (bound, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether the redis-server on `port` answers `command` with `+OK`/`+PONG` (within 1 s). */
function redisOk(port, command = "PING") {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    let reply = "";
    socket.on("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) done(/^\+(OK|PONG)\r\n/.test(reply));
    });
    socket.on("error", () => done(false));
  });
}

/** redis-server on a free port, its data in DIR; resolves once it answers PING. */
async function startRedis() {
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--dir", DIR],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const redis = { child, name: "redis-server", port };
  const deadline = Date.now() + WAIT;
  while (!(await redisOk(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server on ${port} did not answer PING`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return redis;
}

/** `chat --runtime RUNTIME` as node NAME of the Redis at `port`, plus `env`. */
function node(name, runtime, port, env = {}) {
  return {
    ...chatServer(`node ${name} (${runtime})`, CHAT_BIN, {
      NODE_ID: name,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      PRESENCE_EVENTS: "true",
      // A stopped node withdraws its entries, but not always before it
      // exits (the Redis engine's thread is not waited for): a short TTL
      // bounds how long a left-over entry stays listed.
      PRESENCE_TTL: "3",
      STORE_PATH: join(DIR, `${name}.db`),
      ...env,
    }),
    args: ["--runtime", runtime],
  };
}

/** roomShows in `general`. */
const showsExactly = (page, label, texts) => roomShows(page, label, "general", texts);

/** Waits until the presence list holds one chip per node of `nodes` (sorted). */
async function presenceOn(page, label, nodes) {
  try {
    await page.waitForFunction(
      (want) =>
        JSON.stringify(
          [...document.querySelectorAll("#presence .member")]
            .map((chip) => chip.title.replace(/^.* on /, ""))
            .sort(),
        ) === JSON.stringify(want),
      nodes,
      { timeout: WAIT },
    );
  } catch {
    const got = await page.$$eval("#presence .member", (chips) => chips.map((c) => c.title));
    throw new Error(`${label}'s presence is ${JSON.stringify(got)}, not one on each of ${nodes}`);
  }
}

async function send(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

async function main(redis, servers) {
  const a = await startServer(node("a", "tokio", redis.port));
  servers.push(a);
  const b = await startServer(node("b", "mio", redis.port));
  servers.push(b);
  console.log(`redis-server on ${redis.port}; node a on ${a.ports.join("/")}, node b on ${b.ports.join("/")}`);
  const url = (server) => `${HTTP}://127.0.0.1:${server.ports[0]}/?ws=${server.ports[1]}`;

  await withBrowser({ viewport: { width: 900, height: 760 } }, async (context) => {
    const errors = [];
    const open = async (label, server) => {
      const page = await context.newPage();
      collectErrors(page, errors, label);
      await page.goto(url(server), { timeout: WAIT });
      await logHas(page, "joined room: general");
      await page.waitForSelector("#send:not([disabled])", { timeout: WAIT });
      return page;
    };
    const one = await open("page 1", a);
    const two = await open("page 2", b);

    // Both members listed on both pages, one on each node.
    await presenceOn(one, "page 1", ["a", "b"]);
    await presenceOn(two, "page 2", ["a", "b"]);

    const stamp = Date.now();
    const m = (i) => `message ${i} (${stamp})`;
    await send(one, m(1));
    await showsExactly(one, "page 1", [m(1)]);
    await showsExactly(two, "page 2", [m(1)]);
    await send(two, m(2));
    await showsExactly(one, "page 1", [m(1), m(2)]);
    await showsExactly(two, "page 2", [m(1), m(2)]);

    // Node b goes away; page 2 is disconnected and retries. Page 1 sees
    // it leave and sends two more.
    await stopServer(b);
    servers.splice(servers.indexOf(b), 1);
    await logHas(two, "disconnected");
    await presenceOn(one, "page 1", ["a"]);
    await send(one, m(3));
    await send(one, m(4));
    await showsExactly(one, "page 1", [m(1), m(2), m(3), m(4)]);

    // Node b2 on b's WebSocket port: page 2 reconnects to another node and
    // resumes from where it was: 3 and 4 once, 1 and 2 not again.
    const b2 = await startServer(node("b2", "mio", redis.port, { WEBSOCKET_PORT: String(b.ports[1]) }));
    servers.push(b2);
    await two.waitForFunction(
      () => document.getElementById("log").textContent.split("joined room: general").length === 3,
      null,
      { timeout: WAIT },
    );
    await showsExactly(two, "page 2 (resumed on b2)", [m(1), m(2), m(3), m(4)]);
    await presenceOn(two, "page 2", ["a", "b2"]);
    await send(two, m(5));
    await showsExactly(one, "page 1", [m(1), m(2), m(3), m(4), m(5)]);
    await showsExactly(two, "page 2", [m(1), m(2), m(3), m(4), m(5)]);

    // A page opened on node a after page 2 closed: the history, then live.
    await two.close();
    const three = await open("page 3", a);
    await showsExactly(three, "page 3 (history)", [m(1), m(2), m(3), m(4), m(5)]);
    await send(three, m(6));
    await showsExactly(one, "page 1", [m(1), m(2), m(3), m(4), m(5), m(6)]);
    await showsExactly(three, "page 3", [m(1), m(2), m(3), m(4), m(5), m(6)]);

    // Redis loses everything while node b2 is away; page 4, back on a new
    // node b3 on the same port, finds another epoch: it clears the room's
    // lines and starts again from the (empty) history.
    const four = await open("page 4", b2);
    await showsExactly(four, "page 4 (history)", [m(1), m(2), m(3), m(4), m(5), m(6)]);
    await stopServer(b2);
    servers.splice(servers.indexOf(b2), 1);
    await logHas(four, "disconnected");
    check(await redisOk(redis.port, "FLUSHALL"), "FLUSHALL failed");
    const b3 = await startServer(node("b3", "mio", redis.port, { WEBSOCKET_PORT: String(b.ports[1]) }));
    servers.push(b3);
    await logHas(four, "the history of general was lost");
    await showsExactly(four, "page 4 (new epoch)", []);
    await four.waitForSelector("#send:not([disabled])", { timeout: WAIT });
    await send(four, m(7));
    await showsExactly(four, "page 4", [m(7)]);
    await showsExactly(one, "page 1", [m(1), m(2), m(3), m(4), m(5), m(6), m(7)]);

    // Attempts while no node listened are the only errors allowed.
    const real = errors.filter((e) => !/^page [24]: WebSocket connection to .* failed/.test(e));
    check(real.length === 0, `errors in the pages: ${real.join("; ")}`);
  });
}

runTest("browser nodes test", "browser (nodes)", async () => {
  const redis = await startRedis();
  const servers = [];
  const stopped = [];
  try {
    await main(redis, servers);
  } finally {
    // Every node must exit 0 on SIGTERM (a failure here fails the test).
    for (const server of servers) stopped.push(await stopServer(server).catch((e) => e));
    redis.child.kill("SIGTERM");
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        redis.child.kill("SIGKILL");
        resolve();
      }, WAIT);
      redis.child.on("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      if (redis.child.exitCode !== null) resolve();
    });
  }
  const failed = stopped.find((e) => e instanceof Error);
  if (failed) throw failed;
}).finally(() => rmSync(DIR, { recursive: true, force: true }));
