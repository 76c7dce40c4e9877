// Free loopback ports, one-shot `tern` commands and waiting for a condition, with no dependency: shared by the
// conformance suite (helpers.js) and the inspector page's browser suite (tests/ui).

import { spawn } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
	return await new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

/** A UDP port that was free a moment ago on 127.0.0.1 (for `--quic-listen`). */
export async function freeUdpPort() {
	return await new Promise((resolve, reject) => {
		const sock = dgram.createSocket("udp4");
		sock.unref();
		sock.on("error", reject);
		sock.bind(0, "127.0.0.1", () => {
			const { port } = sock.address();
			sock.close(() => resolve(port));
		});
	});
}

/** `count` distinct free ports from `pick`. */
export async function distinctPorts(pick, count) {
	const ports = new Set();
	while (ports.size < count) ports.add(await pick());
	return [...ports];
}

/** Runs a `tern` CLI command to completion; throws with its output if it fails. */
export async function runCli(bin, args) {
	const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
	let out = "";
	child.stdout.on("data", (c) => (out += c));
	child.stderr.on("data", (c) => (out += c));
	const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c)));
	if (code !== 0) throw new Error(`tern ${args.join(" ")} exited with ${code}:\n${out}`);
	return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Retries `fn` until it returns without throwing (and, if it returns a boolean, returns true), within `cap` ms.
 * Returns what `fn` returned. On timeout, rethrows the last failure with context.
 */
export async function eventually(fn, { cap = 20_000, interval = 50, what = "condition" } = {}) {
	const deadline = Date.now() + cap;
	let last;
	for (;;) {
		try {
			const out = await fn();
			if (out !== false) return out;
			last = new Error(`${what}: still false`);
		} catch (err) {
			last = err;
		}
		if (Date.now() >= deadline) {
			const err = new Error(`${what} did not hold within ${cap} ms; last failure: ${last?.stack ?? last}`);
			err.cause = last;
			throw err;
		}
		await sleep(interval);
	}
}

