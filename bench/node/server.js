// The Node socket.io baseline for alight-bench: the demo's room contract with socket.io semantics.
// Run with: node bench/node/server.js --bind 127.0.0.1:4003   (after `npm ci` in bench/node)
//
// | client emits (with an ack)   | server does                                                  |
// |------------------------------|--------------------------------------------------------------|
// | `join`, room                 | joins the room, acks `{}`                                    |
// | `leave`, room                | leaves the room, acks `{}`                                   |
// | `shout`, room, payload       | emits `shout` with the payload to the whole room (sender too), then acks `{}` |
// | `ping`, payload              | acks with the payload                                        |
//
// WebSocket transport only, at /socket.io/ (engine.io v4), so the load generator connects straight to
// `/socket.io/?EIO=4&transport=websocket` as it does against the socketioxide baseline.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function parseBind(argv) {
  let bind = "127.0.0.1:4003";
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--bind" && i + 1 < argv.length) bind = argv[++i];
    else if (argv[i].startsWith("--bind=")) bind = argv[i].slice("--bind=".length);
    else {
      console.error(`bench node server: unknown argument ${argv[i]}; usage: server.js --bind HOST:PORT`);
      process.exit(2);
    }
  }
  const at = bind.lastIndexOf(":");
  return { host: bind.slice(0, at), port: Number(bind.slice(at + 1)) };
}

const { host, port } = parseBind(process.argv.slice(2));
const httpServer = http.createServer();
// socket.io (through ws) buffers outgoing messages without bound, unlike the Rust servers' bounded
// per-socket queues: a slow subscriber costs memory here, never a disconnect.
const io = new Server(httpServer, { transports: ["websocket"], serveClient: false });

const ack = (cb, value) => {
  if (typeof cb === "function") cb(value);
};

io.on("connection", (socket) => {
  socket.on("join", (room, cb) => {
    socket.join(room);
    ack(cb, {});
  });
  socket.on("leave", (room, cb) => {
    socket.leave(room);
    ack(cb, {});
  });
  socket.on("shout", (room, payload, cb) => {
    io.to(room).emit("shout", payload);
    ack(cb, {});
  });
  socket.on("ping", (payload, cb) => ack(cb, payload));
});

httpServer.listen(port, host, () => {
  console.log(`bench node server: serving http://${host}:${port}/ (socket.io ${require("socket.io/package.json").version})`);
});

const stop = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
