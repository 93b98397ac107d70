// Dapr's HTTP lock API (`POST /v1.0-alpha1/lock/{store}` and `/unlock/{store}`), served by
// Node's `http` module: every request goes to the lock component's `http-api` `handle`, as
// transpiled by jco into `component/` (`npm run transpile`); the component's `store` import
// is `store.js`, its WASI imports come from `@bytecodealliance/preview2-shim`.
//
//   node server.js [--port 3500] [--host 127.0.0.1] [--stores lockstore] [--max-body-size 4194304]
//
// `--stores` takes comma-separated names; `--stores ''` configures none. The listening
// address is printed on stdout once the server accepts connections.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { configureStores } from './store.js';
import { httpApi, settings } from './component/lock.js';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '3500' },
    host: { type: 'string', default: '127.0.0.1' },
    stores: { type: 'string', default: 'lockstore' },
    // daprd's `--max-body-size` default: 4 MiB.
    'max-body-size': { type: 'string', default: String(4 * 1024 * 1024) },
  },
});
const maxBodySize = Number(options['max-body-size']);
if (!Number.isSafeInteger(maxBodySize) || maxBodySize < 0) {
  throw new Error(`--max-body-size must be a number of bytes, not ${options['max-body-size']}`);
}

configureStores(options.stores.split(',').filter((name) => name !== ''));
// The component names this bound when it answers `too-large`, so it is given the one the
// server enforces (once, before any other call).
settings.configure({ maxBodySize: BigInt(maxBodySize) });

const server = http.createServer(async (request, response) => {
  const path = request.url;
  const route = path.split('?')[0];
  if (request.method === 'GET' && (route === '/v1.0/healthz' || route === '/v1.0/healthz/outbound')) {
    // Health checks are the host's, as in daprd.
    response.writeHead(204).end();
    return;
  }
  const body = await readBody(request, maxBodySize);
  // A trap (a bug in the component) throws here; Node then stops the process, which is
  // right: jco refuses every later call into a trapped instance.
  const answer = httpApi.handle({ method: request.method, pathWithQuery: path, body });
  response.writeHead(answer.status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(answer.body),
    // A body left unread cannot be followed by another request on this connection.
    ...(body.tag === 'too-large' && { Connection: 'close' }),
  });
  response.end(answer.body);
});

server.listen(Number(options.port), options.host, () => {
  const { address, port } = server.address();
  console.log(`wasilock (Node.js, jco) listening on http://${address}:${port}`);
});

/**
 * The request body as the component's `request-body`: `complete` with the bytes, or
 * `too-large` as soon as it is known to exceed `limit` (from `Content-Length` or while
 * reading), or `unreadable` when the connection fails.
 */
function readBody(request, limit) {
  return new Promise((resolve) => {
    if (Number(request.headers['content-length']) > limit) {
      resolve({ tag: 'too-large' });
      return;
    }
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        resolve({ tag: 'too-large' });
      } else {
        chunks.push(chunk);
      }
    });
    request.on('end', () => resolve({ tag: 'complete', val: Buffer.concat(chunks) }));
    request.on('error', (error) => resolve({ tag: 'unreadable', val: error.message }));
  });
}
