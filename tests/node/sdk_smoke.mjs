// The official openai Node SDK, unmodified, against a running Threadline (BASE_URL).
// Exits non-zero on the first mismatch. Written for openai@4 and openai@5+ (whose message
// methods take the thread id in the options).
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const c = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'unused', maxRetries: 0 });
const modern = c.beta.threads.messages.retrieve.length < 2 || typeof c.beta.threads.del !== 'function';
const msgs = c.beta.threads.messages;
const retrieve = (t, m) => (modern ? msgs.retrieve(m, { thread_id: t }) : msgs.retrieve(t, m));
const update = (t, m, body) => (modern ? msgs.update(m, { thread_id: t, ...body }) : msgs.update(t, m, body));
const remove = (t, m) => (modern ? msgs.delete(m, { thread_id: t }) : msgs.del(t, m));
const removeThread = (t) => (c.beta.threads.delete ? c.beta.threads.delete(t) : c.beta.threads.del(t));

const t = await c.beta.threads.create({ messages: [{ role: 'user', content: 'hello' }], metadata: { a: 'b' } });
assert.deepEqual(t.metadata, { a: 'b' });
for (let i = 0; i < 12; i++) await msgs.create(t.id, { role: i % 2 ? 'assistant' : 'user', content: `m${i}` });
const expected = ['hello', ...Array.from({ length: 12 }, (_, i) => `m${i}`)];
const asc = [];
for await (const m of msgs.list(t.id, { limit: 5, order: 'asc' })) asc.push(m.content[0].text.value);
assert.deepEqual(asc, expected);
const desc = [];
for await (const m of msgs.list(t.id, { limit: 5 })) desc.push(m.content[0].text.value);
assert.deepEqual(desc, [...expected].reverse());
const first = (await msgs.list(t.id, { order: 'asc', limit: 1 })).data[0];
assert.equal((await retrieve(t.id, first.id)).id, first.id);
assert.deepEqual((await update(t.id, first.id, { metadata: { k: 'v' } })).metadata, { k: 'v' });
assert.deepEqual(await remove(t.id, first.id), { id: first.id, object: 'thread.message.deleted', deleted: true });
assert.deepEqual((await c.beta.threads.update(t.id, { metadata: { x: 'y' } })).metadata, { x: 'y' });
await assert.rejects(c.beta.threads.retrieve('nope'), (e) => e.status === 404 && e.message.includes("No thread found with id 'nope'."));
assert.equal((await removeThread(t.id)).deleted, true);
console.log('node sdk ok');
