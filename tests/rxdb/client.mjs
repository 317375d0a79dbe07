// An RxDB client replicating the notes of the datasync example (docs/rxdb.md shows this file
// as it is).
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicateGraphQL } from 'rxdb/plugins/replication-graphql';

// RxDB schema of a note. `version` is the server's version of the document: RxDB sends it
// back as the assumed master state of a change, and the server compares versions.
export const noteSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 100 },
    title: { type: 'string' },
    description: { type: 'string' },
    priority: { type: 'integer' },
    done: { type: 'boolean' },
    tags: { type: 'array', items: { type: 'string' } },
    version: { type: 'integer' },
  },
  required: ['id', 'title', 'priority', 'done', 'tags'],
};

// The fields each operation selects (RxDB keeps what it pulls and pushes it back).
const FIELDS = 'id title description priority done tags version deleted';

export const pullQueryBuilder = (checkpoint, limit) => ({
  query: `query PullNote($checkpoint: NoteInputCheckpoint, $limit: Int!) {
    pullNote(checkpoint: $checkpoint, limit: $limit) {
      documents { ${FIELDS} }
      checkpoint { lastSync }
    }
  }`,
  operationName: 'PullNote',
  variables: { checkpoint: checkpoint ?? null, limit },
});

export const pushQueryBuilder = (rows) => ({
  query: `mutation PushNote($notePushRow: [NoteInputPushRow!]) {
    pushNote(notePushRow: $notePushRow) { ${FIELDS} }
  }`,
  operationName: 'PushNote',
  variables: { notePushRow: rows },
});

export const streamQueryBuilder = (headers) => ({
  query: `subscription StreamNote($headers: NoteInputHeaders) {
    streamNote(headers: $headers) {
      documents { ${FIELDS} }
      checkpoint { lastSync }
    }
  }`,
  variables: { headers },
});

// GraphQL answers null for an optional field without a value; RxDB leaves it out.
const dropNulls = (doc) => Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== null));

// A stream message without documents is the server asking for a pull (when the stream
// starts, and whenever its feed started over): hand RxDB its RESYNC signal.
const responseModifier = (bulk, origin) =>
  origin === 'stream' && bulk.documents.length === 0 ? 'RESYNC' : bulk;

export async function openNotes({ name, http, ws, token }) {
  const db = await createRxDatabase({ name, storage: getRxStorageMemory(), multiInstance: false });
  await db.addCollections({ note: { schema: noteSchema } });
  const replication = startReplication(db, { http, ws, token });
  return { db, replication };
}

export function startReplication(db, { http, ws, token }) {
  return replicateGraphQL({
    collection: db.note,
    replicationIdentifier: `datasync-notes-${http}`,
    url: { http, ws },
    headers: { Authorization: `Bearer ${token}` },
    deletedField: 'deleted',
    live: true,
    retryTime: 500,
    waitForLeadership: false,
    pull: {
      queryBuilder: pullQueryBuilder,
      streamQueryBuilder,
      batchSize: 200, // also how RxDB sees the end of a pull: a page with fewer documents
      includeWsHeaders: true, // the token goes in the WebSocket's connection_init
      responseModifier,
      modifier: dropNulls,
      wsOptions: { retryAttempts: Infinity },
    },
    push: {
      queryBuilder: pushQueryBuilder,
      batchSize: 100,
      responseModifier: (conflicts) => conflicts.map(dropNulls),
    },
  });
}
