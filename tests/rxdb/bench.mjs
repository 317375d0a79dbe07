// RxDB benchmark (a program that prints figures; `cargo run --release --example bench -- rxdb`
// runs it against the release build of the notes example):
// - initial pull: a fresh client replicates N stored notes (median of 3 fresh clients);
// - change-to-other-client latency: client A edits a note, client B sees the edit, through
//   push + stream, one edit at a time (p50 and p99 over the edits).
//
// Environment: NOTES_BIN (the example binary), RXDB_STORES (default sqlite,mongo),
// MONGODB_URI (for mongo), BENCH_DOCS (default 10000), BENCH_EDITS (default 1000).
import { performance } from 'node:perf_hooks';

import { startServer, token } from './server.mjs';
import { openNotes } from './client.mjs';

const STORES = (process.env.RXDB_STORES ?? 'sqlite,mongo').split(',');
const DOCS = Number(process.env.BENCH_DOCS ?? 10_000);
const EDITS = Number(process.env.BENCH_EDITS ?? 1_000);
const USER = 'bench';
let names = 0;

async function client(server) {
  const { db, replication } = await openNotes({
    name: `bench${names++}`,
    http: server.http,
    ws: server.ws,
    token: token(USER),
  });
  replication.error$.subscribe((error) => {
    console.error('replication error:', error.parameters?.errors ?? error);
  });
  return { db, replication };
}

async function close({ db, replication }) {
  await replication.cancel();
  await db.close();
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * q))];
const ms = (v) => `${v.toFixed(1)} ms`;

async function bench(store) {
  const server = await startServer(store);
  try {
    // Seed through a client: N creates pushed in batches of 100.
    const writer = await client(server);
    await writer.replication.awaitInitialReplication();
    const seedStarted = performance.now();
    await writer.db.note.bulkInsert(
      Array.from({ length: DOCS }, (_, i) => ({
        id: `n${String(i).padStart(6, '0')}`,
        title: `note ${i}`,
        description: 'benchmark note',
        priority: i % 10,
        done: i % 2 === 0,
        tags: ['bench'],
      })),
    );
    await writer.replication.awaitInSync();
    const seedMs = performance.now() - seedStarted;

    // Initial pull by fresh clients.
    const pulls = [];
    for (let run = 0; run < 3; run++) {
      const started = performance.now();
      const fresh = await client(server);
      await fresh.replication.awaitInitialReplication();
      const took = performance.now() - started;
      const count = await fresh.db.note.count().exec();
      if (count !== DOCS) throw new Error(`fresh client holds ${count} notes, expected ${DOCS}`);
      pulls.push(took);
      await close(fresh);
    }
    pulls.sort((a, b) => a - b);
    const pullMs = pulls[1];

    // Latency: A edits, B receives.
    const reader = await client(server);
    await reader.replication.awaitInitialReplication();
    const waiting = new Map();
    const subscription = reader.db.note.$.subscribe((event) => {
      const title = event.documentData?.title;
      const done = waiting.get(title);
      if (done) {
        waiting.delete(title);
        done(performance.now());
      }
    });
    const doc = await writer.db.note.findOne('n000000').exec();
    const latencies = [];
    for (let i = 0; i < EDITS; i++) {
      const title = `edit ${i}`;
      const arrived = new Promise((resolve) => waiting.set(title, resolve));
      const started = performance.now();
      await doc.incrementalPatch({ title });
      const at = await arrived;
      latencies.push(at - started);
    }
    subscription.unsubscribe();
    latencies.sort((a, b) => a - b);
    await close(reader);
    await close(writer);
    return {
      store,
      seed: `${Math.round(DOCS / (seedMs / 1000))}/s`,
      pull: pullMs,
      perThousand: (pullMs / DOCS) * 1000,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
    };
  } finally {
    await server.stop();
  }
}

const rows = [];
for (const store of STORES) {
  const row = await bench(store);
  console.log(
    `${store}: initial pull of ${DOCS} notes ${ms(row.pull)} (${ms(row.perThousand)} per 1,000); ` +
      `edit to other client p50 ${ms(row.p50)}, p99 ${ms(row.p99)} over ${EDITS} edits; seeding pushed ${row.seed}`,
  );
  rows.push(row);
}
console.log(`\n| store | initial pull, ${DOCS} notes | per 1,000 | edit -> other client p50 | p99 |`);
console.log('|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.store} | ${ms(r.pull)} | ${ms(r.perThousand)} | ${ms(r.p50)} | ${ms(r.p99)} |`);
}
process.exit(0);
