// The official client against a real three-node cluster (`tern node` ×3 on loopback: iad, fra, syd; mutual-TLS
// QUIC; all three voters): an actor made through one gateway is the same actor through every other gateway
// (stateless actions, resolve(), a connection with `newCount` events fed by calls through another node), and
// concurrent getOrCreate of one key spread over all gateways makes exactly one actor.
//
// On failure the nodes' log files are kept and their paths printed.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ENCODINGS, connected, eventually, startCluster, uniqueKey } from "./helpers.js";

const T = { timeout: 180_000 };

let cluster;
let failed = false;
before(async () => {
	cluster = await startCluster();
});
after(async () => {
	if (failed && cluster) console.error(`cluster test failed; node logs kept:\n${cluster.logPaths()}`);
	await cluster?.close({ keep: failed });
});

/** A test that records failure (to keep the logs) and names the log files in its error. */
function ctest(name, fn) {
	test(name, T, async (t) => {
		try {
			await fn(t);
		} catch (err) {
			failed = true;
			if (err && typeof err === "object" && typeof err.message === "string") {
				err.message += `\nnode logs:\n${cluster?.logPaths()}`;
			}
			throw err;
		}
	});
}

for (const encoding of ENCODINGS) {
	describe(`cluster [${encoding}]`, () => {
		ctest("one actor through every gateway: actions, resolve, connection events", async () => {
			const [a, b, c] = cluster.nodes; // iad-1, fra-1, syd-1
			const clientA = a.client(encoding);
			const clientB = b.client(encoding);
			const clientC = c.client(encoding);
			const key = uniqueKey("cluster");

			// Created through A; B finds the same actor by key.
			const viaA = clientA.counter.getOrCreate(key);
			assert.equal(await viaA.increment(2), 2);
			const id = await viaA.resolve();
			assert.equal(typeof id, "string");
			const viaB = clientB.counter.getOrCreate(key);
			assert.equal(await viaB.resolve(), id, "getOrCreate through fra-1 resolves to the actor made through iad-1");
			assert.equal(await viaB.increment(3), 5);
			assert.equal(await clientC.counter.get(key).resolve(), id, "get through syd-1");

			// A connection through C sees the events of calls made through A.
			const conn = clientC.counter.getOrCreate(key).connect();
			try {
				const seen = [];
				conn.on("newCount", (n) => seen.push(n));
				await connected(conn, "connection through syd-1");
				// A round trip on the connection's socket makes sure the subscription is in place before A acts.
				assert.equal(await conn.getCount(), 5);
				assert.equal(conn.actorId, id);
				assert.equal(await viaA.increment(4), 9);
				await eventually(() => assert.deepEqual(seen, [9]), { cap: 30_000, what: "event from iad-1's call on syd-1's connection" });
				assert.equal(await conn.increment(1), 10);
				await eventually(() => assert.deepEqual(seen, [9, 10]), { cap: 30_000, what: "event from the connection's own call" });
			} finally {
				await conn.dispose();
			}
			// Every gateway reads the same count.
			for (const client of [clientA, clientB, clientC]) {
				assert.equal(await client.counter.get(key).getCount(), 10);
			}
		});

		ctest("20 concurrent getOrCreate of one key over all gateways make one actor", async () => {
			const clients = cluster.nodes.map((n) => n.client(encoding));
			const key = uniqueKey("cluster-race");
			const pick = (i) => clients[i % clients.length];
			const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pick(i).counter.getOrCreate(key).increment(1)));
			assert.deepEqual(
				[...results].sort((x, y) => x - y),
				Array.from({ length: 20 }, (_, i) => i + 1),
			);
			const ids = await Promise.all(Array.from({ length: 9 }, (_, i) => pick(i).counter.getOrCreate(key).resolve()));
			assert.equal(new Set(ids).size, 1, `ids: ${[...new Set(ids)].join(", ")}`);
			for (const client of clients) {
				assert.equal(await client.counter.get(key).getCount(), 20);
			}
		});
	});
}
