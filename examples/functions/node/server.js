'use strict';
// Echo function in Node.js, standard library only (the `http` module).
//
// Answers every request with a JSON document describing it (method, path, query, headers, body), like the
// Rust `echo` example. `GET /healthz` answers `ok`. Query controls: `?sleep=<ms>` waits before answering,
// `?status=<code>` sets the status. Listens on `$PORT` (default 8080). On SIGTERM (what the kubelet sends
// when a pod is scaled away) it stops accepting connections, lets the requests in flight finish, then
// exits 0.

const http = require('node:http');
const os = require('node:os');

const MAX_SLEEP_MS = 600000;
let draining = false;

function send(req, res, status, contentType, body) {
  const headers = { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) };
  // Being stopped: tell the client not to reuse this connection.
  if (draining) headers.Connection = 'close';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/healthz') return send(req, res, 200, 'text/plain', 'ok\n');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let status = 200;
    let sleep = 0;
    if (url.searchParams.has('sleep')) {
      sleep = Number(url.searchParams.get('sleep'));
      if (!Number.isInteger(sleep) || sleep < 0) {
        return send(req, res, 400, 'text/plain', `bad query: sleep=${url.searchParams.get('sleep')}\n`);
      }
    }
    if (url.searchParams.has('status')) {
      status = Number(url.searchParams.get('status'));
      if (!Number.isInteger(status) || status < 100 || status > 599) {
        return send(req, res, 400, 'text/plain', `bad query: status=${url.searchParams.get('status')}\n`);
      }
    }
    const doc = {
      method: req.method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ''),
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      pod: process.env.POD_NAME || process.env.HOSTNAME || os.hostname(),
      function: process.env.ZEROSCALE_FUNCTION || null,
      runtime: 'node',
      status,
    };
    setTimeout(() => send(req, res, status, 'application/json', JSON.stringify(doc) + '\n'),
      Math.min(sleep, MAX_SLEEP_MS));
  });
}

const port = Number(process.env.PORT || 8080);
const server = http.createServer(handle);
// An idle keep-alive connection is closed after 5 s (as in the Python example).
server.keepAliveTimeout = 5000;

function stop(signal) {
  console.error(`signal ${signal}: draining`);
  draining = true;
  // close() stops accepting and calls back once every connection has ended; idle keep-alive connections
  // are closed now rather than after their timeout.
  server.close(() => {
    console.error('stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(port, () => console.error(`echo-node listening on :${port}`));
