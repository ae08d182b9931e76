// What the headless-browser tests share (chat.test.mjs, axum.test.mjs): a
// bounded run with a pass/fail line, `check`, a server binary started on
// free ports (its `listening` line parsed) and stopped with SIGTERM (it must
// exit 0), Debian's Chromium launched by playwright-core on a temporary
// profile, the TLS the chat tests run with when asked (`TLS`), and what
// the chat page shows (`logHas`, `roomShows`). Every wait is bounded.
//
// Importing this module has no side effects: the watchdog starts in runTest.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** The browser: $CHROMIUM, or Debian's. */
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** ms, for anything a test waits on. */
export const WAIT = 15_000;

/** ms, for the whole test (runTest's watchdog). */
const WATCHDOG = 120_000;

/** ms, for Chromium to start. */
const LAUNCH = 60_000;

/** Headless, no sandbox, and nothing talking to the network on its own. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * TLS for the chat tests, when scripts/browser-test.sh asks for it:
 * `BROWSER_TLS_CERT` and `BROWSER_TLS_KEY` (PEM files the server is given
 * as `TLS_CERT_PATH` / `TLS_KEY_PATH`) and `BROWSER_TLS_SPKI` (the base64
 * SHA-256 of the certificate's public key, the one key Chromium is told to
 * trust); `null` otherwise. Node's own `fetch` trusts the test CA through
 * `NODE_EXTRA_CA_CERTS`.
 */
export const TLS = process.env.BROWSER_TLS_CERT
  ? {
      cert: process.env.BROWSER_TLS_CERT,
      key: process.env.BROWSER_TLS_KEY,
      spki: process.env.BROWSER_TLS_SPKI,
    }
  : null;

/** URL schemes of the server under test: `https`/`wss` with TLS. */
export const HTTP = TLS ? "https" : "http";
export const WS = TLS ? "wss" : "ws";

/** The server settings that turn TLS on (none without TLS). */
export const TLS_ENV = TLS ? { TLS_CERT_PATH: TLS.cert, TLS_KEY_PATH: TLS.key } : {};

/** The chat demo's directory (examples/chat/: its page and `.env`). */
const CHAT_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The `chat` binary `bin` as a server spec for `withServer`: run in
 * examples/chat/ on two free loopback ports (the page's, the chat's), with
 * `env` added, over TLS when `TLS`.
 */
export function chatServer(name, bin, env = {}) {
  return {
    name: TLS ? `${name} (TLS)` : name,
    bin,
    cwd: CHAT_DIR,
    env: {
      SERVER_HOST: "127.0.0.1",
      SERVER_PORT: "0",
      WEBSOCKET_HOST: "127.0.0.1",
      WEBSOCKET_PORT: "0",
      ...env,
      ...TLS_ENV,
    },
    ports: 2,
  };
}

/** Resolves once the chat page's log shows `text` (bounded by WAIT). */
export const logHas = (page, text) =>
  page.waitForFunction(
    (t) => document.getElementById("log").textContent.includes(t),
    text,
    { timeout: WAIT },
  );

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/**
 * Runs `main` under a watchdog (the whole test is bounded, whatever hangs)
 * and prints `TALLY: 1 passed, 0 failed` or `TALLY: 0 passed, 1 failed`;
 * a failure sets the exit code to 1. `name` prefixes the messages on stderr.
 */
export function runTest(name, tally, main) {
  const watchdog = setTimeout(() => {
    console.error(`${name}: timed out after ${WATCHDOG / 1000} s`);
    process.exit(1);
  }, WATCHDOG);
  return main().then(
    () => {
      clearTimeout(watchdog);
      console.log(`${tally}: 1 passed, 0 failed`);
    },
    (error) => {
      clearTimeout(watchdog);
      console.error(`${name} failed: ${error.stack || error}`);
      console.log(`${tally}: 0 passed, 1 failed`);
      process.exitCode = 1;
    },
  );
}

/**
 * Starts `bin` with `args` (in `cwd`, with `env` added to this process's
 * environment) and waits for the first complete stdout line that contains
 * `listening`; resolves with `{ child, ports }`, the ports being every
 * `HOST:PORT` on that line in order (`127.0.0.1:8080`, `ws://[::1]:9090/`),
 * of which there must be exactly `ports`. `name` is for the messages.
 * Later output is read and dropped, so the child never blocks on its pipe.
 */
export function startServer({ name, bin, args = [], cwd, env = {}, ports: expected = 1 }) {
  const child = spawn(bin, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let started = false;
    const fail = (error) => {
      started = true;
      clearTimeout(timer);
      reject(error);
    };
    const timer = setTimeout(() => {
      fail(new Error(`${name} printed no \`listening\` line`));
      child.kill("SIGKILL");
    }, WAIT);
    child.on("error", (error) => fail(new Error(`${name} did not start: ${error.message}`)));
    child.on("exit", (code, signal) => {
      if (!started) fail(new Error(`${name} exited early (${code ?? signal})`));
    });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      if (started) return; // later output (joins, leaves, ...) is not needed
      out += chunk;
      const lines = out.split("\n");
      lines.pop(); // not a complete line yet
      const line = lines.find((l) => l.includes("listening"));
      if (line === undefined) return;
      started = true;
      clearTimeout(timer);
      const ports = [...line.matchAll(/[^\s/]+:(\d+)(?=[\s/)]|$)/g)].map((m) => Number(m[1]));
      if (ports.length !== expected) {
        child.kill("SIGKILL");
        reject(new Error(`not ${expected} port(s) in ${JSON.stringify(line)}`));
      } else {
        resolve({ child, name, ports });
      }
    });
  });
}

/**
 * Sends SIGTERM to a server from startServer and waits (bounded) for it to
 * exit; throws unless it exits with status 0.
 */
export async function stopServer({ child, name }) {
  const code = await new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve(child.exitCode ?? child.signalCode); // already gone
      return;
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not exit on SIGTERM`));
    }, WAIT);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
    child.kill("SIGTERM");
  });
  check(code === 0, `${name} exited with ${code} on SIGTERM`);
}

/**
 * startServer(spec), then `body(server)`; the server is stopped afterwards
 * (stopServer: it must exit 0 on SIGTERM), whether `body` succeeded or not.
 */
export async function withServer(spec, body) {
  const server = await startServer(spec);
  try {
    return await body(server);
  } finally {
    await stopServer(server);
  }
}

/**
 * Launches Chromium (headless, the shared flags, a fresh temporary profile,
 * plus `options` for playwright's launchPersistentContext, e.g. `viewport`)
 * and runs `body(context)`; closes the browser and removes the profile
 * afterwards, whether `body` succeeded or not.
 */
export async function withBrowser(options, body) {
  const profile = mkdtempSync(join(tmpdir(), "hubbub-chromium-"));
  let context;
  try {
    // With TLS, Chromium trusts the test certificate's key and no other
    // (no system CA store is touched, no certificate error is ignored).
    const trust = TLS ? [`--ignore-certificate-errors-spki-list=${TLS.spki}`] : [];
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...trust],
      timeout: LAUNCH,
      ...options,
    });
    return await body(context);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Collects `page`'s uncaught errors and console errors into `errors`, each
 * prefixed with `label: ` if a label is given.
 */
export function collectErrors(page, errors, label) {
  const prefix = label ? `${label}: ` : "";
  page.on("pageerror", (e) => errors.push(`${prefix}${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`${prefix}${m.text()}`));
}

/**
 * Resolves once the chat page shows exactly `texts` as the messages of
 * `room` (its log's `room R: ...` lines: history, replay and live), in that
 * order; bounded by WAIT, then throws with what it shows. `label` names
 * the page.
 */
export async function roomShows(page, label, room, texts) {
  const want = texts.map((t) => `room ${room}: ${t}`);
  const shown = ([r]) =>
    [...document.querySelectorAll("#log .line.room > span")]
      .map((s) => s.textContent)
      .filter((t) => t.startsWith(`room ${r}: `));
  try {
    await page.waitForFunction(
      ([r, w]) =>
        JSON.stringify(
          [...document.querySelectorAll("#log .line.room > span")]
            .map((s) => s.textContent)
            .filter((t) => t.startsWith(`room ${r}: `)),
        ) === JSON.stringify(w),
      [room, want],
      { timeout: WAIT },
    );
  } catch (error) {
    if (!/Timeout/i.test(error.message)) throw error;
    const got = await page.evaluate(shown, [room]);
    throw new Error(`${label} shows ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
  }
}
