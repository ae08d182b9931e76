// uWebSockets.js peer server for bench/run.sh, written as uWS.js's own
// examples are (EchoServer.js; the pub/sub of BroadcastingEchoServer.js).
//
//   node echo.mjs --port P [--max-message BYTES] [--broadcast [--exclude-sender]]
//
// The command line of hubbub's `echo` and the Rust peers in ../src/bin:
// * echo mode sends every text and binary message back to its sender;
// * --broadcast subscribes every connection to one topic and publishes
//   every message there with app.publish (uWS's pub/sub): every subscriber
//   gets it, the sender too, one more delivery per message than the other
//   peers make (they forward to every *other* client); the load generator
//   counts those as `self_echo`, not as deliveries.
//   --exclude-sender publishes with ws.publish instead, which skips the
//   sending socket as the other peers do; in uws-pack 20.0.8 that path
//   writes each delivery with its own send() (about 25 times the syscalls
//   and 20 times the CPU of app.publish on the broadcast row), so the
//   benchmark uses app.publish.
//
// uWS.js is uWebSockets.js as repackaged for Node 20 by `uws-pack` (the same
// native binaries, ESM). Compression off (DISABLED), messages up to
// --max-message (16 MiB by default, as the other peers), no idle timeout,
// no automatic pings. maxBackpressure is raised from uWS's 64 KiB default
// to 1 GiB: past it uWS drops messages for a slow receiver, where the other
// peers queue without bound. uWS listens on 127.0.0.1 only and sets
// TCP_NODELAY on every socket itself; its event loop runs on node's main
// thread (one JavaScript thread, as the Rust peers' current_thread runtime).
// Exits on SIGTERM (node's default).

import { App, DISABLED } from "uws-pack";

const USAGE = "usage: node echo.mjs --port P [--max-message BYTES] [--broadcast [--exclude-sender]]";

function parseArgs(argv) {
    const args = { port: null, maxMessage: 16 * 1024 * 1024, broadcast: false, excludeSender: false };
    for (let i = 0; i < argv.length; i++) {
        const value = () => {
            if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
            return argv[++i];
        };
        switch (argv[i]) {
            case "--port": {
                const v = value();
                const port = Number(v);
                if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${v}`);
                args.port = port;
                break;
            }
            case "--max-message": {
                const v = value();
                const size = Number(v);
                if (!Number.isInteger(size) || size <= 0) throw new Error(`bad size ${v}`);
                args.maxMessage = size;
                break;
            }
            case "--broadcast":
                args.broadcast = true;
                break;
            case "--exclude-sender":
                args.excludeSender = true;
                break;
            default:
                throw new Error(`unknown argument ${JSON.stringify(argv[i])}`);
        }
    }
    if (args.port === null) throw new Error("--port is required");
    return args;
}

let args;
try {
    args = parseArgs(process.argv.slice(2));
} catch (e) {
    console.error(`uws-echo: ${e.message}\n${USAGE}`);
    process.exit(2);
}

const TOPIC = "broadcast";
const HOST = "127.0.0.1";

const app = App();
app.ws("/*", {
    compression: DISABLED,
    maxPayloadLength: args.maxMessage,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    maxBackpressure: 1024 * 1024 * 1024,
    open: (ws) => {
        if (args.broadcast) ws.subscribe(TOPIC);
    },
    message: !args.broadcast
        ? (ws, message, isBinary) => {
              ws.send(message, isBinary);
          }
        : args.excludeSender
          ? (ws, message, isBinary) => {
                ws.publish(TOPIC, message, isBinary);
            }
          : (ws, message, isBinary) => {
                app.publish(TOPIC, message, isBinary);
            },
});
app.listen(HOST, args.port, (token) => {
    if (!token) {
        console.error(`uws-echo: failed to listen on ${HOST}:${args.port}`);
        process.exit(1);
    }
    const mode = args.broadcast ? "broadcast" : "echo";
    console.log(`uws-echo (${mode}) listening on ${HOST}:${args.port}`);
});
