// The `room` ready actor: connection params, user errors, messages broadcast to every member, history.

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

const T = { timeout: 180_000 };

// `UserError::new("room.name_required", ...)` in node/src/ready/room.rs: a qualified code reaches clients as
// group `room`, code `name_required` (node/src/sdk/error.rs `UserError::to_client`).
const NAME_REQUIRED = ["room", "name_required"];

let server;
before(async () => {
	server = await startServer();
});
after(async () => {
	await server?.close();
});

for (const encoding of ENCODINGS) {
	describe(`room [${encoding}]`, () => {
		test("stateless post without params → user error room.name_required", T, async (t) => {
			const client = server.client(encoding);
			const key = uniqueKey("room-noparams");
			let observed;
			await assert.rejects(client.room.getOrCreate(key).post("hi"), (err) => {
				observed = err;
				return isActorError(...NAME_REQUIRED)(err);
			});
			t.diagnostic(`stateless post without params: ${describeError(observed)}`);
			assert.match(observed.message, /name/);
			// Params that are present but unusable are refused the same way.
			for (const params of [{ name: "" }, { name: "   " }, { name: 5 }, { other: "x" }]) {
				await assert.rejects(
					client.room.getOrCreate(key, { params }).post("hi"),
					isActorError(...NAME_REQUIRED),
					`params ${JSON.stringify(params)}`,
				);
			}
			// A param-less stateless `history()` is refused too (RivetKit runs onBeforeConnect for stateless calls).
			await assert.rejects(client.room.getOrCreate(key).history(), isActorError(...NAME_REQUIRED));
			// Nothing was stored by the refused posts.
			const ok = await client.room.getOrCreate(key, { params: { name: "zoe" } }).history();
			assert.deepEqual(ok, []);
		});

		test("connect without params → connection error room.name_required, no reconnect loop", T, async (t) => {
			const client = server.client(encoding);
			const conn = client.room.getOrCreate(uniqueKey("room-connect-noparams")).connect();
			const errors = [];
			conn.onError((e) => errors.push(e));
			try {
				let observed;
				await assert.rejects(within(conn.post("hello"), 30_000, "post on refused connection"), (err) => {
					observed = err;
					return isActorError(...NAME_REQUIRED)(err);
				});
				t.diagnostic(`conn.post without params rejected with ${describeError(observed)}`);
				await eventually(() => assert.ok(errors.length >= 1), { what: "onError called" });
				t.diagnostic(`onError saw: ${errors.map(describeError).join(" | ")}`);
				assert.ok(
					errors.some((e) => `${e.group}.${e.code}` === NAME_REQUIRED.join(".")),
					`onError got ${errors.map(describeError).join(" | ")}`,
				);
				// A permanent refusal ends in `idle`; the client does not keep retrying.
				await eventually(() => assert.equal(conn.connStatus, "idle"), { what: "connection idle" });
			} finally {
				await conn.dispose();
			}
		});

		test("members receive every message; post returns {from,text,at}", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("room");
			const alice = client.room.getOrCreate(key, { params: { name: "alice" } }).connect();
			const bob = client.room.getOrCreate(key, { params: { name: "bob" } }).connect();
			try {
				const gotA = [];
				const gotB = [];
				alice.on("message", (m) => gotA.push(m));
				bob.on("message", (m) => gotB.push(m));
				await connected(alice, "alice");
				await connected(bob, "bob");
				// Round trips on each socket make sure both subscriptions are in place (same socket, ordered).
				assert.deepEqual(await alice.history(), []);
				assert.deepEqual(await bob.history(), []);

				const before = Date.now();
				const sent = await alice.post("hello");
				const afterTs = Date.now();
				assert.deepEqual(Object.keys(sent).sort(), ["at", "from", "text"]);
				assert.equal(sent.from, "alice");
				assert.equal(sent.text, "hello");
				assert.equal(typeof sent.at, "number");
				assert.ok(sent.at >= before - 60_000 && sent.at <= afterTs + 60_000, `at=${sent.at} is not a current ms timestamp`);

				await eventually(() => assert.deepEqual(gotA, [sent]), { what: "alice got her message" });
				await eventually(() => assert.deepEqual(gotB, [sent]), { what: "bob got alice's message" });

				const reply = await bob.post("hi alice");
				assert.equal(reply.from, "bob");
				await eventually(() => assert.deepEqual(gotA, [sent, reply]), { what: "alice got bob's reply" });
				await eventually(() => assert.deepEqual(gotB, [sent, reply]), { what: "bob got his reply" });

				// A stateless sender (params via header) is a member for its one call and reaches everyone.
				const carol = await client.room.getOrCreate(key, { params: { name: "carol" } }).post("hey");
				assert.equal(carol.from, "carol");
				await eventually(() => assert.deepEqual(gotA, [sent, reply, carol]), { what: "alice got carol's" });
				await eventually(() => assert.deepEqual(gotB, [sent, reply, carol]), { what: "bob got carol's" });

				assert.deepEqual(await alice.history(), [sent, reply, carol]);

				// Unicode text survives every encoding.
				const fancy = await alice.post("héllo 🌍 \u0000 end");
				assert.equal(fancy.text, "héllo 🌍 \u0000 end");
				await eventually(() => assert.deepEqual(gotB.at(-1), fancy), { what: "bob got unicode" });
			} finally {
				await alice.dispose();
				await bob.dispose();
			}
		});

		test("history keeps the last 100 messages, oldest first", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("room-history");
			const member = client.room.getOrCreate(key, { params: { name: "dora" } });
			for (let i = 0; i < 105; i++) {
				const m = await member.post(`m${i}`);
				assert.equal(m.text, `m${i}`);
			}
			const history = await member.history();
			assert.equal(history.length, 100);
			assert.deepEqual(
				history.map((m) => m.text),
				Array.from({ length: 100 }, (_, i) => `m${i + 5}`),
			);
			for (const m of history) assert.equal(m.from, "dora");
			for (let i = 1; i < history.length; i++) assert.ok(history[i].at >= history[i - 1].at);
		});

		test("send(name, body) is the client's queue send: the room has no queue (queue.unknown_queue)", T, async () => {
			// On RivetKit handles and connections `send(name, body)` is built in (it posts to the actor's queue
			// `name`), which is why the room's action is called `post`.
			const client = server.client(encoding);
			const handle = client.room.getOrCreate(uniqueKey("room-queue"), { params: { name: "finn" } });
			await assert.rejects(handle.send("hello"), isActorError("queue", "unknown_queue"));
			const conn = handle.connect();
			try {
				await connected(conn, "finn");
				await assert.rejects(within(conn.send("hello"), 30_000, "conn.send"), isActorError("queue", "unknown_queue"));
				assert.deepEqual(await conn.history(), []);
			} finally {
				await conn.dispose();
			}
		});

		test("room state survives being put to sleep", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("room-sleep");
			const member = client.room.getOrCreate(key, { params: { name: "eve" } });
			const m = await member.post("before sleep");
			const id = await member.resolve();
			const res = await server.sleepActor(id);
			assert.equal(res.status, 200, res.text);
			assert.deepEqual(res.body, {});
			assert.deepEqual(await member.history(), [m]);
		});
	});
}
