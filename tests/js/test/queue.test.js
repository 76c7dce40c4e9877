// Durable queues through the official client's `handle.send(queue, body, {wait, timeout})`, against the example
// application's `worker` actor (tests/example-app/worker.rs): its run loop adds each number on `jobs` to a
// running total, and a waiting sender gets the new total back.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ENCODINGS, eventually, exampleBinary, isActorError, startServer, uniqueKey } from "./helpers.js";

const T = { timeout: 120_000 };

let server;
before(async () => {
	server = await startServer({ binary: exampleBinary() });
});
after(async () => {
	await server?.close();
});

for (const encoding of ENCODINGS) {
	describe(`queues [${encoding}]`, () => {
		test("send with wait answers with the completion; plain sends are processed in order", T, async () => {
			const worker = server.client(encoding).worker.getOrCreate(uniqueKey("q"));
			assert.equal(await worker.send("jobs", 2), undefined);
			assert.equal(await worker.send("jobs", 3), undefined);
			const answer = await worker.send("jobs", 5, { wait: true, timeout: 20_000 });
			assert.deepEqual(answer, { status: "completed", response: 10 });
			assert.deepEqual(await worker.processed(), [2, 3, 5]);
		});

		test("a send to an undeclared queue is refused", T, async () => {
			const worker = server.client(encoding).worker.getOrCreate(uniqueKey("q"));
			await assert.rejects(worker.send("elsewhere", 1), (err) => isActorError("queue", "unknown_queue")(err));
			await worker.send("jobs", 4);
			await eventually(async () => (await worker.total()) === 4, { what: "the good message was processed" });
		});
	});
}
