// The official client against a real three-node cluster (`tern node` ×3 on loopback: iad, fra, syd; mutual-TLS
// QUIC; all three voters): an actor made through one gateway is the same actor through every other gateway
// (stateless actions, resolve(), a connection with `newCount` events fed by calls through another node), and
// concurrent getOrCreate of one key spread over all gateways makes exactly one actor; an actor moved between the
// regions while clients call it through every gateway and listen on a connection fails no call and closes nothing.
//
// On failure the nodes' log files are kept and their paths printed.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CLUSTER_TOKEN, ENCODINGS, connected, eventually, startCluster, uniqueKey } from "./helpers.js";

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

		ctest("an actor moving iad → fra → syd → iad while clients call and listen: no failed call, no close, every event", async () => {
			const clients = cluster.nodes.map((n) => n.client(encoding));
			const key = uniqueKey("moving");
			const id = await clients[0].counter.getOrCreate(key).resolve();
			// A connection through syd-1 listens; its status must never leave "connected".
			const conn = clients[2].counter.getOrCreate(key).connect();
			const seen = [];
			const statuses = [];
			conn.on("newCount", (n) => seen.push(n));
			await connected(conn, "connection through syd-1");
			conn.onStatusChange((status) => statuses.push(status));
			assert.equal(await conn.getCount(), 0);
			const connectionId = conn.connectionId;

			// Callers through every gateway, and through the connection itself, until the moves are done.
			let moving = true;
			const acked = [];
			const failures = [];
			const caller = async (call) => {
				while (moving) {
					try {
						acked.push(await call());
					} catch (err) {
						failures.push(String(err?.message ?? err));
					}
				}
			};
			const callers = [
				...clients.map((client) => caller(() => client.counter.getForId(id).increment(1))),
				caller(() => conn.increment(1)),
			];
			const nodeOf = { iad: "iad-1", fra: "fra-1", syd: "syd-1" };
			for (const region of ["fra", "syd", "iad", "fra", "iad"]) {
				const before = acked.length;
				await eventually(() => assert.ok(acked.length >= before + 10), { cap: 60_000, what: "calls between moves" });
				const res = await fetch(`${cluster.nodes[1].endpoint}/actors/${id}/migrate`, {
					method: "POST",
					headers: { authorization: `Bearer ${CLUSTER_TOKEN}`, "content-type": "application/json" },
					body: JSON.stringify({ region }),
				});
				const moved = await res.json();
				assert.equal(res.status, 200, JSON.stringify(moved));
				assert.equal(moved.to.node, nodeOf[region], JSON.stringify(moved));
			}
			moving = false;
			await Promise.all(callers);

			assert.deepEqual(failures, [], "no call failed during the moves");
			const n = acked.length;
			assert.deepEqual([...acked].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i + 1));
			assert.equal(await clients[1].counter.get(key).getCount(), n);
			await eventually(() => assert.equal(seen.length, n), { cap: 30_000, what: "every event" });
			assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i + 1), "events in order");
			assert.deepEqual(statuses, [], "the connection never closed");
			assert.equal(conn.connectionId, connectionId);
			await conn.dispose();
		});
	});
}
