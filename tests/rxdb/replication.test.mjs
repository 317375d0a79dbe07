// Real RxDB clients (RxDB 17, memory storage) replicating against the datasync notes example,
// on SQLite and on MongoDB: pull with checkpoints, batched push with conflicts, the live stream,
// offline edits, a large first pull, deletes and tombstone expiry. Every test ends with each
// client holding exactly the server's notes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer, token } from './server.mjs';
import { openNotes, startReplication } from './client.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const STORES = (process.env.RXDB_STORES ?? 'sqlite,mongo').split(',');
const USER = 'alice';
let names = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, condition, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await condition();
    if (answer === true) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${answer}`);
    await sleep(100);
  }
}

/** A client: its database, replication, and what went wrong. */
async function open(server, label) {
  const auth = { http: server.http, ws: server.ws, token: token(USER) };
  const { db, replication } = await openNotes({ name: `${label}${names++}`, ...auth });
  const client = { label, db, replication, auth, errors: [], conflicts: 0, expired: 0, closed: false };
  watch(client);
  return client;
}

function watch(client) {
  client.replication.error$.subscribe((error) => {
    const codes = (error.parameters?.errors ?? []).map((e) => e.extensions?.code);
    if (codes.includes('SYNC_EXPIRED')) {
      client.expired += 1;
      startOver(client);
    } else {
      client.errors.push(error);
    }
  });
  client.replication.conflict$?.subscribe(() => {
    client.conflicts += 1;
  });
}

/**
 * `SYNC_EXPIRED`: deleted notes this client had not seen were purged on the server, so its
 * copy may hold notes that no longer exist. Drop the copy and replicate from the beginning.
 */
async function startOver(client) {
  if (client.restarting) return;
  client.restarting = true;
  await client.replication.cancel();
  await client.db.remove();
  const { db, replication } = await openNotes({ name: `${client.label}${names++}`, ...client.auth });
  Object.assign(client, { db, replication, restarting: false });
  watch(client);
}

async function stopReplication(client) {
  await client.replication.cancel();
}

function resumeReplication(client) {
  client.replication = startReplication(client.db, client.auth);
  watch(client);
}

async function close(client) {
  if (client.closed) return;
  client.closed = true;
  await client.replication.cancel();
  await client.db.close();
}

/** The client's notes: id -> plain document. */
async function local(client) {
  const docs = await client.db.note.find().exec();
  return new Map(docs.map((d) => [d.id, d.toJSON()]));
}

/**
 * The same note. A client may lack the version of a note it pushed (RxDB takes what it pushed
 * as the stored state until the note changes again); a version it has must be the server's.
 */
function same(serverNote, clientNote) {
  return (
    clientNote !== undefined &&
    serverNote.title === clientNote.title &&
    (serverNote.description ?? undefined) === (clientNote.description ?? undefined) &&
    serverNote.priority === clientNote.priority &&
    serverNote.done === clientNote.done &&
    JSON.stringify(serverNote.tags) === JSON.stringify(clientNote.tags) &&
    (clientNote.version === undefined || serverNote._version === clientNote.version)
  );
}

/** Waits until every client holds exactly the server's notes, then checks it. */
async function converged(server, clients) {
  let last = '';
  await waitFor('every client to hold the server notes', async () => {
    const truth = await server.notes(USER);
    for (const client of clients) {
      await client.replication.awaitInSync();
      const mine = await local(client);
      const missing = [...truth.values()].filter((n) => !same(n, mine.get(n.id)));
      const ghosts = [...mine.keys()].filter((id) => !truth.has(id));
      if (missing.length || ghosts.length) {
        last = `${client.label} (${client.db.name}): ${missing.length} missing or stale (e.g. ${JSON.stringify(missing[0])} vs ${JSON.stringify(missing[0] && mine.get(missing[0].id))}), ghosts ${ghosts.slice(0, 3)}`;
        return last;
      }
    }
    return true;
  });
  for (const client of clients) assert.deepEqual(client.errors, [], `${client.label} replication errors`);
}

test('docs/rxdb.md shows the client setup exactly as the tests use it', () => {
  const setup = readFileSync(join(here, 'client.mjs'), 'utf8');
  const doc = readFileSync(join(here, '../../docs/rxdb.md'), 'utf8');
  assert.ok(doc.includes(setup), 'docs/rxdb.md must contain tests/rxdb/client.mjs verbatim');
});

for (const store of STORES) {
  describe(`RxDB replicating on ${store}`, () => {
    let server;
    let a;
    let b;
    let c;

    before(async () => {
      server = await startServer(store);
      [a, b, c] = await Promise.all(['A', 'B', 'C'].map((label) => open(server, label)));
      await Promise.all([a, b, c].map((client) => client.replication.awaitInitialReplication()));
    });

    after(async () => {
      await Promise.all([a, b, c].map(close));
      await server.stop();
    });

    test('writes on one client reach the others and the server', async () => {
      await a.db.note.bulkInsert([
        { id: 'n1', title: 'Milk', priority: 1, done: false, tags: ['home'] },
        { id: 'n2', title: 'Bread', priority: 2, done: false, tags: [] },
        { id: 'n3', title: 'Eggs', description: 'a dozen', priority: 3, done: false, tags: [] },
      ]);
      await converged(server, [a, b, c]);
      await (await b.db.note.findOne('n2').exec()).patch({ done: true, title: 'Rye bread' });
      await (await c.db.note.findOne('n3').exec()).remove();
      await converged(server, [a, b, c]);
      const truth = await server.notes(USER);
      assert.deepEqual([...truth.keys()].sort(), ['n1', 'n2']);
      assert.equal(truth.get('n2').title, 'Rye bread');
      assert.equal(truth.get('n2')._version, 2);
    });

    test('concurrent edits of one note: the server answers a conflict, RxDB resolves it', async () => {
      await converged(server, [a, b, c]);
      await stopReplication(b);
      await (await a.db.note.findOne('n1').exec()).patch({ title: 'Oat milk' });
      await a.replication.awaitInSync();
      // B edits the same note from the version it knew.
      await (await b.db.note.findOne('n1').exec()).patch({ title: 'Soy milk' });
      resumeReplication(b);
      await converged(server, [a, b, c]);
      assert.ok(b.conflicts >= 1, 'the server answered with its master state');
      // RxDB's default handler keeps the master state.
      assert.equal((await server.notes(USER)).get('n1').title, 'Oat milk');
    });

    test('a client offline for 500 edits converges when it reconnects', async () => {
      await stopReplication(c);
      const created = Array.from({ length: 250 }, (_, i) => ({
        id: `off${i}`,
        title: `offline ${i}`,
        priority: i,
        done: false,
        tags: ['offline'],
      }));
      await c.db.note.bulkInsert(created);
      for (let i = 0; i < 250; i += 1) {
        await (await c.db.note.findOne(`off${i}`).exec()).patch({ done: true });
      }
      resumeReplication(c);
      await converged(server, [a, b, c]);
      const truth = await server.notes(USER);
      assert.equal([...truth.values()].filter((n) => n.id.startsWith('off') && n.done).length, 250);
    });

    test('a fresh client pulls 10,000 notes', async () => {
      const notes = Array.from({ length: 10_000 }, (_, i) => ({
        id: `bulk${String(i).padStart(5, '0')}`,
        title: `note ${i}`,
        priority: i % 10,
        done: i % 2 === 0,
        tags: [],
      }));
      await a.db.note.bulkInsert(notes);
      await a.replication.awaitInSync();
      const started = Date.now();
      const fresh = await open(server, 'D');
      await fresh.replication.awaitInitialReplication();
      const pulled = (await fresh.db.note.count().exec());
      console.log(`# ${store}: a fresh client pulled ${pulled} notes in ${Date.now() - started} ms`);
      assert.ok(pulled >= 10_000);
      await converged(server, [a, b, c, fresh]);
      await close(fresh);
    });
  });

  describe(`RxDB and tombstone expiry on ${store}`, () => {
    test('deletes propagate; a client whose deletes were purged starts over without ghosts', async () => {
      const server = await startServer(store, { retentionSecs: 2 });
      const a = await open(server, 'A');
      const b = await open(server, 'B');
      try {
        await a.db.note.bulkInsert([
          { id: 'keep', title: 'keep', priority: 1, done: false, tags: [] },
          { id: 'gone', title: 'gone', priority: 1, done: false, tags: [] },
        ]);
        await converged(server, [a, b]);
        // A goes offline; B deletes a note; its tombstone outlives the retention and is purged.
        await stopReplication(a);
        await (await b.db.note.findOne('gone').exec()).remove();
        await b.replication.awaitInSync();
        await sleep(3_500);
        await server.graphql(USER, '{ syncNotes(lastSync: "0") { lastSync } }');
        // A comes back: told its checkpoint is too old, it starts over and holds no ghost.
        resumeReplication(a);
        await waitFor('A to be told to start over', async () => a.expired > 0 || `expired ${a.expired}`);
        await converged(server, [a, b]);
        assert.equal((await local(a)).has('gone'), false);
        assert.equal((await local(b)).has('gone'), false);
      } finally {
        await close(a);
        await close(b);
        await server.stop();
      }
    });
  });
}
