// Durability and reconnection: state kept across a graceful restart and a kill -9 of the server, and a
// connection that the server closes with a retryable reason (actor put to sleep) reconnecting on its own.

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
} from "./helpers.js";

const T = { timeout: 180_000 };

let server;
before(async () => {
	server = await startServer();
});
after(async () => {
	await server?.close();
});

for (const encoding of ENCODINGS) {
	describe(`lifecycle [${encoding}]`, () => {
		test("sleep via admin endpoint closes the connection with a retryable reason; it reconnects and gets events again", T, async (t) => {
			const client = server.client(encoding);
			const key = uniqueKey("sleepy");
			const handle = client.counter.getOrCreate(key);
			const conn = handle.connect();
			const seen = [];
			const errors = [];
			let opens = 0;
			let closes = 0;
			const statuses = [];
			conn.on("newCount", (n) => seen.push(n));
			conn.onError((e) => errors.push(e));
			conn.onOpen(() => opens++);
			conn.onClose(() => closes++);
			conn.onStatusChange((s) => statuses.push(s));
			try {
				await connected(conn);
				await eventually(() => assert.equal(opens, 1), { what: "first open" });
				assert.equal(await conn.increment(1), 1);
				await eventually(() => assert.deepEqual(seen, [1]), { what: "event before sleep" });
				const actorId = conn.actorId;
				assert.equal(actorId, await handle.resolve());

				const res = await server.sleepActor(actorId);
				assert.equal(res.status, 200, res.text);
				assert.deepEqual(res.body, {});

				await eventually(() => assert.ok(closes >= 1), { cap: 30_000, what: "server closed the connection" });
				await eventually(() => assert.ok(opens >= 2 && conn.connStatus === "connected"), {
					cap: 60_000,
					what: `reconnected (statuses so far: ${statuses.join(",")})`,
				});
				t.diagnostic(`statuses: ${statuses.join(" → ")}; errors: ${errors.map(describeError).join(" | ")}`);
				// The close reason reached the client as actor.stopping.
				assert.ok(
					errors.some((e) => e.group === "actor" && e.code === "stopping"),
					`expected an actor.stopping close reason, got: ${errors.map(describeError).join(" | ") || "no errors"}`,
				);
				// The actor woke with its state; it is the same actor.
				assert.equal(conn.actorId, actorId);
				// The resubscription travels on the new socket before this action, so its event must arrive.
				assert.equal(await conn.increment(1), 2);
				await eventually(() => assert.deepEqual(seen, [1, 2]), { what: "event after reconnect" });
				// Changes made by others reach the reconnected connection too.
				assert.equal(await handle.increment(5), 7);
				await eventually(() => assert.deepEqual(seen, [1, 2, 7]), { what: "event from stateless call after reconnect" });
			} finally {
				await conn.dispose();
			}
		});

		test("sleeping an actor keeps its state; stateless calls wake it", T, async () => {
			const client = server.client(encoding);
			const handle = client.counter.getOrCreate(uniqueKey("nap"));
			assert.equal(await handle.increment(11), 11);
			const id = await handle.resolve();
			for (let i = 0; i < 3; i++) {
				const res = await server.sleepActor(id);
				assert.equal(res.status, 200, res.text);
				assert.deepEqual(res.body, {});
				assert.equal(await handle.increment(1), 12 + i);
			}
			// Sleeping an actor that is already asleep is harmless: the same answer, and it stays asleep.
			for (let i = 0; i < 2; i++) {
				const again = await server.sleepActor(id);
				assert.equal(again.status, 200, again.text);
				assert.deepEqual(again.body, {});
			}
			assert.equal(await client.counter.getForId(id).getCount(), 14);
		});

		test("sleep of an unknown actor is actor.not_found", T, async () => {
			const res = await server.sleepActor("no-such-actor");
			assert.equal(res.status, 404, res.text);
			assert.equal(`${res.body?.group}.${res.body?.code}`, "actor.not_found", res.text);
		});
	});
}

// Restarts affect every test in the file, so they run once per file (each encoding checked after each restart).
describe("restart", () => {
	const keys = Object.fromEntries(ENCODINGS.map((e) => [e, uniqueKey(`persist-${e}`)]));
	const expected = {};
	const ids = {};

	test("state written before a graceful restart is seen by a new connection", T, async (t) => {
		for (const encoding of ENCODINGS) {
			const client = server.client(encoding);
			const handle = client.counter.getOrCreate(keys[encoding]);
			assert.equal(await handle.increment(21), 21);
			const conn = handle.connect();
			await connected(conn);
			assert.equal(await conn.increment(21), 42);
			expected[encoding] = 42;
			ids[encoding] = await handle.resolve();
			// Leave the connection open across the stop: the server must still stop gracefully.
		}
		await server.restart();
		await server.disposeClients().catch(() => {});
		t.diagnostic("server restarted (SIGTERM) with connections open");
		for (const encoding of ENCODINGS) {
			const client = server.client(encoding);
			const conn = client.counter.getOrCreate(keys[encoding]).connect();
			try {
				await connected(conn);
				assert.equal(await conn.getCount(), expected[encoding], `${encoding} after graceful restart`);
				assert.equal(conn.actorId, ids[encoding]);
			} finally {
				await conn.dispose();
			}
			assert.equal(await client.counter.get(keys[encoding]).getCount(), expected[encoding]);
			assert.equal(await client.counter.getForId(ids[encoding]).getCount(), expected[encoding]);
		}
	});

	test("an action answered before kill -9 survives it", T, async (t) => {
		for (const encoding of ENCODINGS) {
			const client = server.client(encoding);
			assert.equal(await client.counter.getOrCreate(keys[encoding]).increment(8), expected[encoding] + 8);
			expected[encoding] += 8;
		}
		await server.restart({ hard: true });
		await server.disposeClients().catch(() => {});
		t.diagnostic("server restarted (SIGKILL)");
		for (const encoding of ENCODINGS) {
			const client = server.client(encoding);
			assert.equal(await client.counter.get(keys[encoding]).getCount(), expected[encoding], `${encoding} after kill -9`);
			const conn = client.counter.getOrCreate(keys[encoding]).connect();
			try {
				await connected(conn);
				assert.equal(await conn.increment(1), expected[encoding] + 1);
				expected[encoding] += 1;
			} finally {
				await conn.dispose();
			}
		}
	});

	test("keys stay unique and destroyed actors stay destroyed across a restart", T, async () => {
		const client = server.client("json");
		const gone = uniqueKey("gone");
		const goneHandle = client.counter.getOrCreate(gone);
		await goneHandle.increment(1);
		const goneId = await goneHandle.resolve();
		const del = await server.fetchJson(`/actors/${encodeURIComponent(goneId)}?namespace=default`, { method: "DELETE" });
		assert.equal(del.status, 200, del.text);
		assert.deepEqual(del.body, {});
		await server.disposeClients().catch(() => {});
		await server.restart();
		const after = server.client("json");
		await assert.rejects(after.counter.getForId(goneId).getCount(), isActorError("actor", "not_found"));
		await assert.rejects(after.counter.get(gone).getCount(), isActorError("actor", "not_found"));
		await assert.rejects(after.counter.create(keys.json), isActorError("actor", "duplicate_key"));
		assert.equal(await after.counter.get(keys.json).getCount(), expected.json);
	});
});
