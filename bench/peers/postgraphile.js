// PostGraphile 4 as `make bench-peers` runs it (bench/peers.py starts it; nothing here is for other use).
//
// One schema, `peers` (postgraphile.sql), served at /graphql. Each request's key (Authorization: Bearer <key>) is
// looked up in PEERS_PG_KEYS ({key: role}) and the request runs as that role (pgSettings: PostGraphile begins a
// transaction and sets `role` for it, as it does for a role taken from a JWT), so PostgreSQL's grants, row-level
// security and the mask view decide what it reads. A request without a known key runs as PEERS_PG_ANONYMOUS,
// which may read nothing.
//
// PEERS_PROCESSES > 1: that many worker processes on one port, by Node's cluster module (PostGraphile 4 has no
// process model of its own; the primary accepts the connections and hands them round).
//
// Environment: PEERS_PG_URL (the authenticator's connection), PEERS_PG_KEYS, PEERS_PG_ANONYMOUS, PEERS_PORT,
// PEERS_POOL (connections per process), PEERS_PROCESSES.
"use strict";

const cluster = require("node:cluster");
const http = require("node:http");
const { Pool } = require("pg");
const { postgraphile } = require("postgraphile");

const processes = Number(process.env.PEERS_PROCESSES || "1");
const port = Number(process.env.PEERS_PORT);

if (processes > 1 && cluster.isPrimary) {
  for (let i = 0; i < processes; i += 1) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    console.error(`postgraphile worker ${worker.process.pid} exited (${signal || code})`);
    process.exit(1);
  });
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      for (const worker of Object.values(cluster.workers)) worker.process.kill("SIGTERM");
      process.exit(0);
    });
  }
} else {
  const keys = JSON.parse(process.env.PEERS_PG_KEYS);
  const anonymous = process.env.PEERS_PG_ANONYMOUS;
  const pool = new Pool({ connectionString: process.env.PEERS_PG_URL, max: Number(process.env.PEERS_POOL || "10") });
  const middleware = postgraphile(pool, "peers", {
    ignoreRBAC: false, // the schema holds only what some role may read
    disableQueryLog: true,
    graphiql: false,
    enableQueryBatching: false,
    retryOnInitFail: false,
    pgSettings: (req) => {
      const match = /^Bearer (.+)$/.exec(req.headers.authorization || "");
      return { role: (match && keys[match[1]]) || anonymous };
    },
  });
  const server = http.createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"status":"ok"}');
      return;
    }
    middleware(req, res);
  });
  server.keepAliveTimeout = 65000;
  server.listen(port, "127.0.0.1");
  process.on("SIGTERM", () => {
    server.close();
    pool.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
