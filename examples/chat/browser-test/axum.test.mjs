// The axum-echo page in a real headless browser (Debian's Chromium, driven
// by playwright-core): start `axum-echo --deflate` on a free port, open its
// page at `/`, whose script sends a message to `/ws` and shows the echo;
// then, from the page, a 64 KiB message round-trips over the negotiated
// permessage-deflate. `axum-echo` exits 0 on SIGTERM.
//
//   node axum.test.mjs /path/to/axum-echo
//
// Run by scripts/browser-test.sh, after the chat test. The shared harness
// (server, browser, watchdog) is harness.mjs.

import { WAIT, check, collectErrors, runTest, withBrowser, withServer } from "./harness.mjs";

const BIN = process.argv[2];

if (!BIN) {
  console.error("usage: node axum.test.mjs /path/to/axum-echo");
  process.exit(2);
}

/** `axum-echo --deflate` on a free port. */
const AXUM_ECHO = { name: "axum-echo", bin: BIN, args: ["--port", "0", "--deflate"] };

async function main(server) {
  const [port] = server.ports;
  console.log(`axum-echo on http://127.0.0.1:${port}/`);
  await withBrowser({}, async (context) => {
    const errors = [];
    const page = await context.newPage();
    collectErrors(page, errors);
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: WAIT });

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
  });
}

runTest("axum browser test", "axum-browser", () => withServer(AXUM_ECHO, main));
