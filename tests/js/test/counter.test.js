// The `counter` ready actor through the official client: resolution (getOrCreate / get / create / getForId),
// stateless actions, connections with events, and destroy.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
	ENCODINGS,
	connected,
	describeError,
	eventually,
	isActorError,
	startServer,
	uniqueKey,
	within,
} from "./helpers.js";

const T = { timeout: 120_000 };

let server;
before(async () => {
	server = await startServer();
});
after(async () => {
	await server?.close();
});

for (const encoding of ENCODINGS) {
	describe(`counter [${encoding}]`, () => {
		test("getOrCreate + stateless actions", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("counter");
			const handle = client.counter.getOrCreate(key);
			assert.equal(await handle.increment(5), 5);
			assert.equal(await handle.increment(2), 7);
			assert.equal(await handle.getCount(), 7);
			// Another handle for the same key reaches the same actor; another key is a different actor.
			assert.equal(await client.counter.getOrCreate(key).getCount(), 7);
			assert.equal(await client.counter.getOrCreate(uniqueKey("other")).getCount(), 0);
			// Compound keys work and are distinct from their parts.
			const compound = [key[0], "part-2"];
			assert.equal(await client.counter.getOrCreate(compound).increment(3), 3);
			assert.equal(await client.counter.getOrCreate(key).getCount(), 7);
			// Negative amounts and zero.
			assert.equal(await handle.increment(-10), -3);
			assert.equal(await handle.increment(0), -3);
		});

		test("concurrent getOrCreate of one key makes one actor", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("race");
			const results = await Promise.all(Array.from({ length: 20 }, () => client.counter.getOrCreate(key).increment(1)));
			assert.deepEqual(
				[...results].sort((a, b) => a - b),
				Array.from({ length: 20 }, (_, i) => i + 1),
			);
			const ids = await Promise.all(Array.from({ length: 10 }, () => client.counter.getOrCreate(key).resolve()));
			assert.equal(new Set(ids).size, 1, `ids: ${[...new Set(ids)].join(", ")}`);
			assert.equal(await client.counter.get(key).getCount(), 20);
		});

		test("get of a missing key rejects with actor.not_found", T, async (t) => {
			const client = server.client(encoding);
			const key = uniqueKey("missing");
			let observed;
			await assert.rejects(
				client.counter.get(key).getCount(),
				(err) => {
					observed = err;
					return isActorError("actor", "not_found")(err);
				},
			);
			t.diagnostic(`get(missing).getCount() rejected with ${describeError(observed)}`);
			await assert.rejects(client.counter.get(key).resolve(), isActorError("actor", "not_found"));
			// `get` never creates: the key is still free afterwards.
			const list = await server.fetchJson(
				`/actors?name=counter&key=${encodeURIComponent(key[0])}&namespace=default`,
			);
			assert.equal(list.status, 200, list.text);
			assert.deepEqual(list.body.actors, []);
		});

		test("create of an existing key rejects with actor.duplicate_key", T, async (t) => {
			const client = server.client(encoding);
			const key = uniqueKey("dup");
			const created = await client.counter.create(key);
			assert.equal(await created.increment(4), 4);
			let observed;
			await assert.rejects(client.counter.create(key), (err) => {
				observed = err;
				return isActorError("actor", "duplicate_key")(err);
			});
			t.diagnostic(`second create rejected with ${describeError(observed)}`);
			// The existing actor is untouched.
			assert.equal(await client.counter.get(key).getCount(), 4);
			// getOrCreate on an existing key returns it rather than failing.
			assert.equal(await client.counter.getOrCreate(key).getCount(), 4);
		});

		test("getForId after resolve()", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("byid");
			const handle = client.counter.getOrCreate(key);
			const id = await handle.resolve();
			assert.equal(typeof id, "string");
			assert.ok(id.length > 0);
			// resolve() is stable, and get() resolves to the same id.
			assert.equal(await handle.resolve(), id);
			assert.equal(await client.counter.get(key).resolve(), id);
			const byId = client.counter.getForId(id);
			assert.equal(await byId.increment(3), 3);
			assert.equal(await handle.getCount(), 3);
			assert.equal(await byId.resolve(), id);
			// The REST view agrees.
			const list = await server.fetchJson(`/actors?actor_ids=${encodeURIComponent(id)}&namespace=default`);
			assert.equal(list.status, 200, list.text);
			assert.equal(list.body.actors.length, 1);
			assert.equal(list.body.actors[0].actor_id, id);
			assert.equal(list.body.actors[0].name, "counter");
		});

		test("getForId of an unknown id rejects with actor.not_found", T, async () => {
			const client = server.client(encoding);
			await assert.rejects(
				client.counter.getForId("no-such-actor-id").getCount(),
				isActorError("actor", "not_found"),
			);
		});

		test("connect: action, newCount events, unsubscribe", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("events");
			const conn = client.counter.getOrCreate(key).connect();
			try {
				const seenA = [];
				const seenB = [];
				const offA = conn.on("newCount", (count) => seenA.push(count));
				conn.on("newCount", (count) => seenB.push(count));
				await connected(conn);
				assert.equal(conn.connStatus, "connected");
				assert.equal(typeof conn.actorId, "string");
				assert.equal(await conn.increment(1), 1);
				await eventually(() => assert.deepEqual(seenA, [1]), { what: "listener A got 1" });
				assert.equal(await conn.increment(2), 3);
				await eventually(() => assert.deepEqual(seenA, [1, 3]), { what: "listener A got 3" });
				assert.equal(await conn.getCount(), 3);

				// Events reach the connection also for changes made by others (a stateless call).
				assert.equal(await client.counter.getOrCreate(key).increment(10), 13);
				await eventually(() => assert.deepEqual(seenA, [1, 3, 13]), { what: "event from stateless call" });

				// After A unsubscribes, it gets nothing more. B stays subscribed and serves as the barrier: events
				// are dispatched to all listeners of one frame together, so once B has 14, A would have it too.
				offA();
				assert.equal(await conn.increment(1), 14);
				await eventually(() => assert.deepEqual(seenB, [1, 3, 13, 14]), { what: "listener B got 14" });
				assert.deepEqual(seenA, [1, 3, 13]);
			} finally {
				await conn.dispose();
			}
		});

		test("connect: a second connection receives the broadcast", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("fanout");
			const c1 = client.counter.getOrCreate(key).connect();
			const c2 = client.counter.getOrCreate(key).connect();
			try {
				const seen2 = [];
				c2.on("newCount", (n) => seen2.push(n));
				await connected(c1, "c1");
				await connected(c2, "c2");
				// c2's subscription travels on c2's socket; make sure it is processed before c1 acts by doing a
				// round trip on c2 first (same socket, ordered).
				assert.equal(await c2.getCount(), 0);
				assert.equal(await c1.increment(7), 7);
				await eventually(() => assert.deepEqual(seen2, [7]), { what: "c2 got c1's event" });
				assert.equal(c1.actorId, c2.actorId);
			} finally {
				await c1.dispose();
				await c2.dispose();
			}
		});

		test("connect: an unknown action rejects but leaves the connection open", T, async () => {
			const client = server.client(encoding);
			const conn = client.counter.getOrCreate(uniqueKey("conn-unknown")).connect();
			try {
				await connected(conn);
				await assert.rejects(
					within(conn.action({ name: "noSuchAction", args: [] }), 20_000, "unknown action"),
					isActorError("actor", "action_not_found"),
				);
				assert.equal(await conn.increment(2), 2);
				assert.equal(conn.connStatus, "connected");
			} finally {
				await conn.dispose();
			}
		});

		test("stateless: an unknown action rejects with actor.action_not_found", T, async () => {
			const client = server.client(encoding);
			const handle = client.counter.getOrCreate(uniqueKey("unknown"));
			await assert.rejects(handle.action({ name: "noSuchAction", args: [] }), isActorError("actor", "action_not_found"));
			assert.equal(await handle.increment(1), 1);
		});

		test("destroy action, then get → actor.not_found", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("destroy");
			const handle = client.counter.getOrCreate(key);
			assert.equal(await handle.increment(9), 9);
			const id = await handle.resolve();
			await handle.destroy();
			await eventually(
				async () => {
					await assert.rejects(client.counter.get(key).getCount(), isActorError("actor", "not_found"));
				},
				{ cap: 60_000, what: "get after destroy is not_found" },
			);
			await assert.rejects(client.counter.getForId(id).getCount(), isActorError("actor", "not_found"));
			// The key is free again: getOrCreate makes a new, empty actor with another id.
			const again = client.counter.getOrCreate(key);
			assert.equal(await again.getCount(), 0);
			assert.notEqual(await again.resolve(), id);
		});

		test("DELETE /actors/{id}, then get → actor.not_found", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("delete");
			const handle = client.counter.getOrCreate(key);
			assert.equal(await handle.increment(2), 2);
			const id = await handle.resolve();
			const del = await server.fetchJson(`/actors/${encodeURIComponent(id)}?namespace=default`, { method: "DELETE" });
			assert.equal(del.status, 200, del.text);
			assert.deepEqual(del.body, {});
			await eventually(
				async () => {
					await assert.rejects(client.counter.get(key).getCount(), isActorError("actor", "not_found"));
				},
				{ cap: 60_000, what: "get after DELETE is not_found" },
			);
			await assert.rejects(client.counter.getForId(id).getCount(), isActorError("actor", "not_found"));
			// The REST view shows it destroyed (or no longer lists it).
			const list = await server.fetchJson(`/actors?actor_ids=${encodeURIComponent(id)}&namespace=default`);
			assert.equal(list.status, 200, list.text);
			for (const a of list.body.actors) {
				assert.equal(a.actor_id, id);
				assert.ok(a.destroy_ts != null, `destroyed actor listed without destroy_ts: ${list.text}`);
			}
			// Deleting it again reports that it is gone.
			const again = await server.fetchJson(`/actors/${encodeURIComponent(id)}?namespace=default`, { method: "DELETE" });
			assert.equal(again.status, 404, again.text);
			assert.equal(`${again.body?.group}.${again.body?.code}`, "actor.not_found", again.text);
		});

		test("destroy closes open connections and they do not silently stay on a dead actor", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("destroy-conn");
			const conn = client.counter.getOrCreate(key).connect();
			try {
				await connected(conn);
				assert.equal(await conn.increment(1), 1);
				const id = conn.actorId;
				const closes = [];
				conn.onClose(() => closes.push(Date.now()));
				const del = await server.fetchJson(`/actors/${encodeURIComponent(id)}?namespace=default`, { method: "DELETE" });
				assert.equal(del.status, 200, del.text);
				assert.deepEqual(del.body, {});
				await eventually(() => assert.ok(closes.length >= 1), { cap: 30_000, what: "connection closed after destroy" });
				// The connection was made by key (getOrCreate), so it reconnects by key: to a new, empty actor with
				// another id, not to the destroyed one.
				await eventually(() => assert.equal(conn.connStatus, "connected"), { cap: 30_000, what: "reconnected" });
				assert.notEqual(conn.actorId, id);
				assert.equal(await conn.increment(1), 1);
				assert.equal(await client.counter.get(key).resolve(), conn.actorId);
			} finally {
				await conn.dispose();
			}
		});
	});
}
