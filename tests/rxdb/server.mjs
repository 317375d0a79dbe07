// Starts the datasync notes example (the binary `cargo test` builds) for the RxDB tests, and
// reads its state back over GraphQL.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const NOTES_BIN = process.env.NOTES_BIN ?? join(here, '../../target/debug/examples/notes');
const SECRET = 'rxdb test secret';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A token for `user`, minted by the example itself. */
export function token(user) {
  return execFileSync(NOTES_BIN, ['token', user], {
    env: { ...process.env, NOTES_JWT_SECRET: SECRET },
  })
    .toString()
    .trim();
}

let databases = 0;

/**
 * Starts the example on `store` ('sqlite' or 'mongo'), with tokens required.
 * `retentionSecs` sets the tombstone retention.
 */
export async function startServer(store, { retentionSecs } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'datasync-rxdb-'));
  const env = { ...process.env, PORT: String(port), NOTES_JWT_SECRET: SECRET };
  delete env.MONGODB_URI;
  if (store === 'mongo') {
    if (!process.env.MONGODB_URI) throw new Error('MONGODB_URI is not set (scripts/test sets it)');
    env.MONGODB_URI = process.env.MONGODB_URI;
    env.MONGODB_DB = `rxdb_${process.pid}_${databases++}_${Date.now()}`;
  } else {
    env.NOTES_DB = join(dir, 'notes.db');
  }
  if (retentionSecs !== undefined) env.NOTES_TOMBSTONE_RETENTION_SECS = String(retentionSecs);
  const child = spawn(NOTES_BIN, [], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the example exited (${code})`)));
    child.stdout.on('data', (chunk) => {
      if (chunk.toString().includes('datasync notes example')) resolve();
    });
  });
  const http = `http://127.0.0.1:${port}/graphql`;
  return {
    http,
    ws: `ws://127.0.0.1:${port}/graphql`,
    async stop() {
      child.removeAllListeners('exit');
      child.kill();
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    },
    /** Runs a GraphQL request as `user`. */
    async graphql(user, query, variables = {}) {
      const response = await fetch(http, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token(user)}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = await response.json();
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    },
    /** The live notes of `user` on the server: id -> note. */
    async notes(user) {
      const all = new Map();
      for (;;) {
        const data = await this.graphql(
          user,
          `query($p: PageRequest) { findNotes(page: $p) { items { id title description priority done tags _version } } }`,
          { p: { limit: 1000, offset: all.size } },
        );
        for (const n of data.findNotes.items) all.set(n.id, n);
        if (data.findNotes.items.length < 1000) return all;
      }
    },
  };
}
