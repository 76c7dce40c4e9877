// The `/connect` WebSocket protocol spoken by hand (JSON encoding), to check what the client library hides:
// the echoed subprotocol, frame order, server-side unsubscription, and malformed frames.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { WebSocket, eventually, startServer, uniqueKey, within } from "./helpers.js";

const T = { timeout: 60_000 };

let server;
before(async () => {
	server = await startServer();
});
after(async () => {
	await server?.close();
});

/** Opens `/gateway/{id}/connect` with the client's subprotocols and collects parsed frames. */
async function open(actorId, { params } = {}) {
	const protocols = ["rivet", "rivet_encoding.json"];
	if (params !== undefined) protocols.push(`rivet_conn_params.${encodeURIComponent(JSON.stringify(params))}`);
	const url = `${server.endpoint.replace("http", "ws")}/gateway/${encodeURIComponent(actorId)}/connect`;
	const ws = new WebSocket(url, protocols);
	const frames = [];
	const raw = [];
	let closed;
	const closedP = new Promise((resolve) => {
		ws.on("close", (code, reason) => {
			closed = { code, reason: reason.toString() };
			resolve(closed);
		});
	});
	ws.on("message", (data) => {
		raw.push(data.toString());
		try {
			frames.push(JSON.parse(data.toString()));
		} catch {
			frames.push({ unparsable: data.toString() });
		}
	});
	await within(
		new Promise((resolve, reject) => {
			ws.once("open", resolve);
			ws.once("error", reject);
		}),
		20_000,
		"websocket open",
	);
	return { ws, frames, raw, closed: () => closed, closedP };
}

const big = (n) => ["$BigInt", String(n)];
const actionReq = (id, name, args) => JSON.stringify({ body: { tag: "ActionRequest", val: { id: big(id), name, args } } });
const subReq = (eventName, subscribe) => JSON.stringify({ body: { tag: "SubscriptionRequest", val: { eventName, subscribe } } });

async function counterId() {
	const client = server.client("json");
	const handle = client.counter.getOrCreate(uniqueKey("rawws"));
	return await handle.resolve();
}

test("echoes the `rivet` subprotocol and sends Init first", T, async () => {
	const id = await counterId();
	const c = await open(id);
	try {
		assert.equal(c.ws.protocol, "rivet");
		await eventually(() => assert.ok(c.frames.length >= 1), { what: "first frame" });
		const init = c.frames[0];
		assert.equal(init.body?.tag, "Init", c.raw[0]);
		assert.equal(init.body.val.actorId, id);
		assert.equal(typeof init.body.val.connectionId, "string");
	} finally {
		c.ws.close();
	}
});

test("events come before the action's response; after unsubscribe the server sends none", T, async () => {
	const id = await counterId();
	const c = await open(id);
	try {
		await eventually(() => assert.equal(c.frames[0]?.body?.tag, "Init"), { what: "Init" });
		c.ws.send(subReq("newCount", true));
		c.ws.send(actionReq(0, "increment", [2]));
		await eventually(() => assert.ok(c.frames.some((f) => f.body?.tag === "ActionResponse")), { what: "response 0" });
		const tags = c.frames.map((f) => f.body?.tag);
		assert.deepEqual(tags, ["Init", "Event", "ActionResponse"], c.raw.join("\n"));
		assert.deepEqual(c.frames[1].body.val, { name: "newCount", args: [2] });
		// uint ids are JSON-compat bigints server → client.
		assert.deepEqual(c.frames[2].body.val, { id: big(0), output: 2 });

		c.ws.send(subReq("newCount", false));
		c.ws.send(actionReq(1, "increment", [3]));
		await eventually(() => assert.equal(c.frames.filter((f) => f.body?.tag === "ActionResponse").length, 2), {
			what: "response 1",
		});
		assert.deepEqual(
			c.frames.slice(3).map((f) => f.body?.tag),
			["ActionResponse"],
			`no Event after unsubscribe:\n${c.raw.join("\n")}`,
		);
		assert.deepEqual(c.frames[3].body.val, { id: big(1), output: 5 });

		// Numbers are accepted as ids too; an unknown action is an Error for that id, and the socket stays open.
		c.ws.send(JSON.stringify({ body: { tag: "ActionRequest", val: { id: 7, name: "nope", args: [] } } }));
		await eventually(() => assert.equal(c.frames.at(-1)?.body?.tag, "Error"), { what: "per-action error" });
		const err = c.frames.at(-1).body.val;
		assert.equal(`${err.group}.${err.code}`, "actor.action_not_found");
		assert.deepEqual(err.actionId, big(7));
		c.ws.send(actionReq(8, "getCount", []));
		await eventually(() => assert.deepEqual(c.frames.at(-1)?.body?.val, { id: big(8), output: 5 }), { what: "still open" });
	} finally {
		c.ws.close();
	}
});

test("a malformed frame closes with 1011 actor.invalid_request and loses nothing", T, async () => {
	const id = await counterId();
	const c = await open(id);
	await eventually(() => assert.equal(c.frames[0]?.body?.tag, "Init"), { what: "Init" });
	c.ws.send(actionReq(0, "increment", [4]));
	await eventually(() => assert.ok(c.frames.some((f) => f.body?.tag === "ActionResponse")), { what: "response" });
	c.ws.send("this is not json");
	const closed = await within(c.closedP, 20_000, "close after malformed frame");
	assert.deepEqual(closed, { code: 1011, reason: "actor.invalid_request" });
	// The close is preceded by an Error for no action, naming the problem.
	const error = c.frames.at(-1).body;
	assert.equal(error.tag, "Error", c.raw.join(" | "));
	assert.equal(`${error.val.group}.${error.val.code}`, "actor.invalid_request");
	assert.equal(error.val.actionId, null);
	assert.match(error.val.message, /^malformed JSON/);
	assert.equal(await server.client("json").counter.getForId(id).getCount(), 4);
});

test("an oversize frame (> 64 KiB) closes with 1011 message.incoming_too_long", T, async () => {
	const id = await counterId();
	const c = await open(id);
	await eventually(() => assert.equal(c.frames[0]?.body?.tag, "Init"), { what: "Init" });
	c.ws.send(actionReq(0, "increment", ["x".repeat(70 * 1024)]));
	const closed = await within(c.closedP, 20_000, "close after oversize frame");
	assert.deepEqual(closed, { code: 1011, reason: "message.incoming_too_long" });
	assert.equal(await server.client("json").counter.getForId(id).getCount(), 0);
});

test("connect to an unknown actor id fails with actor.not_found", T, async () => {
	const url = `${server.endpoint.replace("http", "ws")}/gateway/no-such-actor/connect`;
	const ws = new WebSocket(url, ["rivet", "rivet_encoding.json"]);
	const frames = [];
	ws.on("message", (d) => frames.push(d.toString()));
	const outcome = await within(
		new Promise((resolve) => {
			ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
			ws.on("unexpected-response", (_req, res) => resolve({ httpStatus: res.statusCode }));
			ws.on("error", (e) => resolve({ error: e.message }));
		}),
		20_000,
		"connect to unknown actor",
	);
	// The upgrade succeeds; one Error for no action names the problem, then the close carries its code.
	assert.deepEqual(outcome, { code: 1011, reason: "actor.not_found" });
	assert.equal(frames.length, 1, frames.join(" | "));
	const error = JSON.parse(frames[0]).body;
	assert.equal(error.tag, "Error");
	assert.deepEqual(
		{ group: error.val.group, code: error.val.code, actionId: error.val.actionId },
		{ group: "actor", code: "not_found", actionId: null },
	);
	ws.terminate();
});
