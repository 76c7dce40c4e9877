// Raw HTTP (`onRequest`) and raw WebSocket (`onWebSocket`) handlers through the official client's
// `handle.fetch()` and `handle.webSocket()`, against the example application's `web` actor
// (tests/example-app/web.rs): GET /count, POST /increment, * /echo, GET /messages, POST /fail; a WebSocket that
// greets with `hello {path}`, echoes every message and counts and stores it.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ENCODINGS, eventually, exampleBinary, startServer, uniqueKey, within } from "./helpers.js";

const T = { timeout: 120_000 };

let server;
before(async () => {
	server = await startServer({ binary: exampleBinary() });
});
after(async () => {
	await server?.close();
});

/** Collects a raw socket's messages (text as strings, binary as byte arrays) and its close. */
function reader(ws) {
	const messages = [];
	let closed;
	ws.addEventListener("message", (event) => {
		messages.push(typeof event.data === "string" ? event.data : [...new Uint8Array(event.data)]);
	});
	const closedPromise = new Promise((resolve) => {
		ws.addEventListener("close", (event) => {
			closed = { code: event.code, reason: event.reason };
			resolve(closed);
		});
	});
	const opened = new Promise((resolve, reject) => {
		ws.addEventListener("open", resolve);
		ws.addEventListener("error", reject);
	});
	return {
		opened: within(opened, 20_000, "raw WebSocket open"),
		/** The next message not yet taken. */
		async next() {
			await eventually(() => messages.length > 0 || closed !== undefined, { what: "a raw WebSocket message" });
			assert.ok(messages.length > 0, `the socket closed instead: ${JSON.stringify(closed)}`);
			return messages.shift();
		},
		closed: () => within(closedPromise, 20_000, "raw WebSocket close"),
	};
}

describe("raw HTTP through handle.fetch()", () => {
	for (const encoding of ENCODINGS) {
		test(`count and increment (${encoding})`, T, async () => {
			const handle = server.client(encoding).web.getOrCreate(uniqueKey("fetch"));
			let res = await handle.fetch("count");
			assert.equal(res.status, 200);
			assert.deepEqual(await res.json(), { count: 0 });
			res = await handle.fetch("increment", { method: "POST" });
			assert.equal(res.status, 200);
			assert.deepEqual(await res.json(), { count: 1 });
			res = await handle.fetch("/increment", { method: "POST" });
			assert.deepEqual(await res.json(), { count: 2 });
			assert.deepEqual(await (await handle.fetch("count")).json(), { count: 2 });
			// The stateless action sees what the handler changed.
			assert.deepEqual(await handle.stats(), { count: 2, messages: 0 });
		});
	}

	test("the handler sees method, path, query, headers, body and connection params", T, async () => {
		const handle = server.client().web.getOrCreate(uniqueKey("echo"), { params: { user: "ada" } });
		const res = await handle.fetch("echo?x=1", { method: "PUT", headers: { "x-test": "yes" }, body: "payload" });
		assert.equal(res.status, 200);
		assert.equal(res.headers.get("x-web"), "echo");
		const expected = { method: "PUT", path: "/echo", query: "x=1", body: "payload", header: "yes", params: { user: "ada" } };
		assert.deepEqual(await res.json(), expected);
	});

	test("the handler's own 404; an actor without onRequest answers handler.request_not_defined", T, async () => {
		const client = server.client();
		const res = await client.web.getOrCreate(uniqueKey("404")).fetch("nowhere");
		assert.equal(res.status, 404);
		assert.equal(await res.text(), "no such route");
		const missing = await client.counter.getOrCreate(uniqueKey("404")).fetch("count");
		assert.equal(missing.status, 404);
		const body = await missing.json();
		assert.equal(`${body.group}.${body.code}`, "handler.request_not_defined");
	});

	test("a failing handler keeps nothing, a committed one survives kill -9", T, async () => {
		const key = uniqueKey("durable");
		const handle = server.client().web.getOrCreate(key);
		assert.deepEqual(await (await handle.fetch("increment", { method: "POST" })).json(), { count: 1 });
		const failed = await handle.fetch("fail", { method: "POST" });
		assert.equal(failed.status, 400);
		const error = await failed.json();
		assert.equal(`${error.group}.${error.code}`, "web.rejected");
		await server.restart({ hard: true });
		const again = server.client().web.getOrCreate(key);
		assert.deepEqual(await (await again.fetch("count")).json(), { count: 1 });
	});
});

describe("raw WebSocket through handle.webSocket()", () => {
	test("echoes text and binary; each message is counted and stored", T, async () => {
		const handle = server.client().web.getOrCreate(uniqueKey("ws"));
		const ws = await handle.webSocket();
		const socket = reader(ws);
		await socket.opened;
		assert.equal(ws.protocol, "rivet");
		assert.equal(await socket.next(), "hello /");
		ws.send("one");
		assert.equal(await socket.next(), "one");
		ws.send(new Uint8Array([1, 2, 3]));
		assert.deepEqual(await socket.next(), [1, 2, 3]);
		ws.send("two");
		assert.equal(await socket.next(), "two");
		// Each echo left only after its message was committed.
		assert.deepEqual(await (await handle.fetch("messages")).json(), { messages: 3, stored: 3, last: "two" });
		ws.close();
		await socket.closed();
		assert.deepEqual(await handle.stats(), { count: 0, messages: 3 });
	});

	test("the handler sees the path and query; connection params reach the before-connect hook", T, async () => {
		const client = server.client();
		const key = uniqueKey("ws-path");
		const ws = await client.web.getOrCreate(key).webSocket("room?x=1");
		const socket = reader(ws);
		await socket.opened;
		assert.equal(await socket.next(), "hello /room?x=1");
		ws.close();
		const denied = reader(await client.web.getOrCreate(key, { params: { deny: true } }).webSocket());
		assert.deepEqual(await denied.closed(), { code: 1011, reason: "web.denied" });
	});

	test("a failing message closes with its reason and keeps nothing; sleep closes with actor.stopping", T, async () => {
		const handle = server.client().web.getOrCreate(uniqueKey("ws-close"));
		const ws = await handle.webSocket();
		let socket = reader(ws);
		await socket.opened;
		assert.equal(await socket.next(), "hello /");
		ws.send("fail");
		assert.deepEqual(await socket.closed(), { code: 1011, reason: "web.rejected" });
		assert.deepEqual(await handle.stats(), { count: 0, messages: 0 });

		const sleeper = await handle.webSocket();
		socket = reader(sleeper);
		await socket.opened;
		assert.equal(await socket.next(), "hello /");
		sleeper.send("sleep");
		assert.equal(await socket.next(), "sleep");
		assert.deepEqual(await socket.closed(), { code: 1011, reason: "actor.stopping" });
		assert.deepEqual(await handle.stats(), { count: 0, messages: 1 });
	});

	test("an actor without onWebSocket closes with handler.websocket_not_defined", T, async () => {
		const ws = await server.client().counter.getOrCreate(uniqueKey("ws-none")).webSocket();
		assert.deepEqual(await reader(ws).closed(), { code: 1011, reason: "handler.websocket_not_defined" });
	});
});
