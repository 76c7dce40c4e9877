// Bad input over raw HTTP (not through the client): every kind gets a clear catalogue error and loses nothing.
// Error bodies are JSON `{group, code, message, metadata}` whatever encoding was asked for.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ENCODINGS, startServer, uniqueKey } from "./helpers.js";

const T = { timeout: 120_000 };
const LIMIT = 64 * 1024;

let server;
before(async () => {
	server = await startServer();
});
after(async () => {
	await server?.close();
});

// --- minimal encoders for HttpActionRequest {args} -----------------------------------------------------------

function varint(n) {
	const out = [];
	do {
		let b = n & 0x7f;
		n = Math.floor(n / 128);
		if (n > 0) b |= 0x80;
		out.push(b);
	} while (n > 0);
	return out;
}

function cborHead(major, n) {
	if (n < 24) return [(major << 5) | n];
	if (n < 0x100) return [(major << 5) | 24, n];
	if (n < 0x10000) return [(major << 5) | 25, n >> 8, n & 0xff];
	return [(major << 5) | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** CBOR for an array of small non-negative integers and strings. */
function cborArray(items) {
	const parts = [Buffer.from(cborHead(4, items.length))];
	for (const it of items) {
		if (typeof it === "number") parts.push(Buffer.from(cborHead(0, it)));
		else {
			const b = Buffer.from(it, "utf8");
			parts.push(Buffer.from(cborHead(3, b.length)), b);
		}
	}
	return Buffer.concat(parts);
}

/** The body of `POST /action/{name}` with these args, in `encoding`. */
function actionBody(encoding, args) {
	if (encoding === "json") return JSON.stringify({ args });
	const argsCbor = cborArray(args);
	if (encoding === "cbor") {
		const key = Buffer.from("args");
		return Buffer.concat([Buffer.from([0xa1, ...cborHead(3, key.length)]), key, argsCbor]);
	}
	// bare: vbare version 4 (u16 LE) + HttpActionRequest { args: data (varint length + CBOR) }
	return Buffer.concat([Buffer.from([0x04, 0x00, ...varint(argsCbor.length)]), argsCbor]);
}

const contentType = (encoding) => (encoding === "json" ? "application/json" : "application/octet-stream");

async function action(actorId, name, encoding, body, extraHeaders = {}) {
	return await server.fetchJson(`/gateway/${encodeURIComponent(actorId)}/action/${encodeURIComponent(name)}`, {
		method: "POST",
		headers: { "x-rivet-encoding": encoding, "content-type": contentType(encoding), ...extraHeaders },
		body,
	});
}

function assertError(res, status, qualified) {
	const where = `${res.status} ${res.headers.get("content-type")} ${res.text.slice(0, 300)}`;
	assert.equal(res.status, status, `status: ${where}`);
	assert.ok(res.headers.get("content-type")?.includes("application/json"), `error body is not JSON: ${where}`);
	assert.equal(`${res.body?.group}.${res.body?.code}`, qualified, `group.code: ${where}`);
	assert.equal(typeof res.body.message, "string", where);
	assert.ok(res.body.message.length > 0, where);
}

/** Creates a counter over REST and returns its id. */
async function createCounter(key) {
	const res = await server.fetchJson("/actors?namespace=default", {
		method: "PUT",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ name: "counter", key: key[0], runner_name_selector: "default", crash_policy: "sleep" }),
	});
	assert.equal(res.status, 200, res.text);
	assert.equal(res.body.created, true, res.text);
	assert.equal(res.body.actor.name, "counter");
	return res.body.actor.actor_id;
}

async function countOf(actorId) {
	const res = await action(actorId, "getCount", "json", actionBody("json", []));
	assert.equal(res.status, 200, res.text);
	return res.body.output;
}

test("GET /metadata answers JSON", T, async () => {
	const res = await server.fetchJson("/metadata?namespace=default");
	assert.equal(res.status, 200);
	assert.equal(typeof res.body, "object", res.text);
});

for (const encoding of ENCODINGS) {
	describe(`bad input on an actor's routes [${encoding}]`, () => {
		let id;
		before(async () => {
			id = await createCounter(uniqueKey(`raw-${encoding}`));
		});

		test("a well-formed raw action works", T, async () => {
			const res = await action(id, "increment", encoding, actionBody(encoding, [5]));
			assert.equal(res.status, 200, res.text);
			if (encoding === "json") assert.deepEqual(res.body, { output: 5 });
			assert.equal(await countOf(id), 5);
		});

		test("malformed body → 400 actor.invalid_request", T, async () => {
			const bad = {
				json: ["{not json", '{"args": [1', "", "[1,2]"],
				cbor: [Buffer.from([0xff, 0xff]), Buffer.from([0xa1, 0x64]), Buffer.alloc(0), Buffer.from([0x05])],
				bare: [Buffer.from([0x04, 0x00, 0xff]), Buffer.from([0x04]), Buffer.alloc(0), Buffer.from([0x04, 0x00, 0x05, 0x81])],
			}[encoding];
			for (const body of bad) {
				const res = await action(id, "increment", encoding, body);
				assertError(res, 400, "actor.invalid_request");
			}
			assert.equal(await countOf(id), 5);
		});

		test("unknown action → 404 actor.action_not_found", T, async () => {
			assertError(await action(id, "noSuchAction", encoding, actionBody(encoding, [])), 404, "actor.action_not_found");
		});

		test("wrong HTTP method on an action route → 405 actor.method_not_allowed", T, async () => {
			for (const method of ["GET", "DELETE"]) {
				const res = await server.fetchJson(`/gateway/${encodeURIComponent(id)}/action/increment`, {
					method,
					headers: { "x-rivet-encoding": encoding },
				});
				assertError(res, 405, "actor.method_not_allowed");
			}
		});

		test("oversize body (> 64 KiB) → 400 message.incoming_too_long", T, async () => {
			const body = actionBody(encoding, ["x".repeat(LIMIT + 1024)]);
			assert.ok(body.length > LIMIT);
			assertError(await action(id, "increment", encoding, body), 400, "message.incoming_too_long");
		});

		test("a far larger body (4 MiB) is refused too", T, async () => {
			// The node reads (and discards) a body over the limit, up to 32 MiB, so that the client gets the
			// error answer rather than a connection reset.
			const huge = actionBody(encoding, ["y".repeat(4 * 1024 * 1024)]);
			assertError(await action(id, "increment", encoding, huge), 400, "message.incoming_too_long");
			assert.equal(await countOf(id), 5);
		});

		test("wrong argument types → 400 actor.invalid_request", T, async () => {
			const res = await action(id, "increment", encoding, actionBody(encoding, ["not a number"]));
			assertError(res, 400, "actor.invalid_request");
			assert.match(res.body.message, /^invalid arguments for action 'increment'/);
		});

		test("malformed x-rivet-conn-params → 400", T, async () => {
			const res = await action(id, "getCount", encoding, actionBody(encoding, []), { "x-rivet-conn-params": "{nope" });
			assertError(res, 400, "actor.invalid_request");
		});

		test("after all of that the counter still has its value", T, async () => {
			assert.equal(await countOf(id), 5);
			const res = await action(id, "increment", encoding, actionBody(encoding, [1]));
			assert.equal(res.status, 200, res.text);
			assert.equal(await countOf(id), 6);
		});
	});
}

describe("bad input on REST and gateway routing", () => {
	test("unknown actor name in PUT /actors and POST /actors → 400 actor.not_registered", T, async () => {
		for (const method of ["PUT", "POST"]) {
			const res = await server.fetchJson("/actors?namespace=default", {
				method,
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ name: "no_such_actor", key: "k", runner_name_selector: "default", crash_policy: "sleep" }),
			});
			assertError(res, 400, "actor.not_registered");
		}
	});

	test("unknown namespace → 400 actor.namespace_not_found", T, async () => {
		const res = await server.fetchJson("/actors?namespace=no-such-namespace", {
			method: "PUT",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ name: "counter", key: "k", runner_name_selector: "default", crash_policy: "sleep" }),
		});
		assertError(res, 400, "actor.namespace_not_found");
	});

	test("malformed JSON to PUT /actors → 400 actor.invalid_request", T, async () => {
		const res = await server.fetchJson("/actors?namespace=default", {
			method: "PUT",
			headers: { "content-type": "application/json" },
			body: "{oops",
		});
		assertError(res, 400, "actor.invalid_request");
	});

	test("bad rvt-method → 400 guard.query_invalid_method", T, async () => {
		const res = await server.fetchJson(
			"/gateway/counter/action/getCount?rvt-namespace=default&rvt-method=bogus&rvt-key=qk",
			{ method: "POST", headers: { "x-rivet-encoding": "json", "content-type": "application/json" }, body: actionBody("json", []) },
		);
		assertError(res, 400, "guard.query_invalid_method");
	});

	test("unknown rvt-* parameter → 400 guard.*", T, async () => {
		const res = await server.fetchJson(
			"/gateway/counter/action/getCount?rvt-namespace=default&rvt-method=get&rvt-key=qk&rvt-bogus=1",
			{ method: "POST", headers: { "x-rivet-encoding": "json", "content-type": "application/json" }, body: actionBody("json", []) },
		);
		assert.equal(res.status, 400, res.text);
		assert.equal(res.body?.group, "guard", res.text);
	});

	test("a good query-gateway request works", T, async () => {
		const key = uniqueKey("qgw")[0];
		const url = `/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=${encodeURIComponent(key)}&rvt-crash-policy=sleep`;
		const init = { method: "POST", headers: { "x-rivet-encoding": "json", "content-type": "application/json" }, body: actionBody("json", [2]) };
		assert.deepEqual((await server.fetchJson(url, init)).body, { output: 2 });
		assert.deepEqual((await server.fetchJson(url, init)).body, { output: 4 });
	});

	test("a user error travels as 400 with its group and code", T, async () => {
		const key = uniqueKey("room-raw")[0];
		const url = `/gateway/room/action/history?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=${encodeURIComponent(key)}&rvt-crash-policy=sleep`;
		const init = (params) => ({
			method: "POST",
			headers: {
				"x-rivet-encoding": "json",
				"content-type": "application/json",
				...(params ? { "x-rivet-conn-params": JSON.stringify(params) } : {}),
			},
			body: actionBody("json", []),
		});
		assertError(await server.fetchJson(url, init()), 400, "room.name_required");
		const ok = await server.fetchJson(url, init({ name: "raw" }));
		assert.equal(ok.status, 200, ok.text);
		assert.deepEqual(ok.body, { output: [] });
	});

	test("unknown actor id on the gateway → 404 actor.not_found", T, async () => {
		const res = await action("no-such-actor-id", "getCount", "json", actionBody("json", []));
		assertError(res, 404, "actor.not_found");
	});
});
