// Shared helpers for the RivetKit-client conformance tests: run a real `tern dev` process, make clients,
// poll for conditions, and talk raw HTTP to the gateway.
//
// Verdicts never depend on timing: every wait is "until the condition holds, within a generous cap".

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { distinctPorts, eventually, freePort, freeUdpPort, runCli } from "./local.js";

// Node 20 has no global WebSocket. rivetkit 2.3.19 (`src/common/websocket.ts` `importWebSocket`) uses the
// global one if present, else `import("ws")`; set it explicitly so both paths give the same `ws` class.
if (typeof globalThis.WebSocket === "undefined") {
	globalThis.WebSocket = WebSocket;
}
// The client logs expected failures (error responses, closed sockets) at `warn`; keep test output readable.
process.env.RIVET_LOG_LEVEL ??= "error";

const { createClient } = await import("rivetkit/client");

export { WebSocket, eventually };

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The `tests/js` folder. */
export const PACKAGE_DIR = path.resolve(HERE, "..");

/** The three client encodings; each scenario runs once per encoding. */
export const ENCODINGS = ["bare", "cbor", "json"];

/** How long a server may take to answer `GET /metadata` after it is spawned. */
const START_CAP_MS = 30_000;
/** How long a server may take to exit after SIGTERM. */
const STOP_CAP_MS = 30_000;
/** Default cap for `within`. */
const EVENTUALLY_CAP_MS = 20_000;

/** A node binary: `$<env>` if set, else `fallback`; both relative to tests/js. */
function locateBinary(env, fallback) {
	const bin = path.resolve(PACKAGE_DIR, process.env[env] || fallback);
	if (!fs.existsSync(bin)) {
		const name = path.basename(fallback);
		throw new Error(`${name} binary not found at ${bin} (build it with \`cargo build --bin ${name}\` or set ${env})`);
	}
	return bin;
}

/** The stock `tern` binary: `$TERN_BIN`, else `../../target/debug/tern` relative to tests/js. */
export function ternBinary() {
	return locateBinary("TERN_BIN", "../../target/debug/tern");
}

/**
 * The example application (the ready actors plus the test actors of `tests/example-app`, e.g. `web`):
 * `$TERN_EXAMPLE_BIN`, else `../../target/debug/tern-example` relative to tests/js.
 */
export function exampleBinary() {
	return locateBinary("TERN_EXAMPLE_BIN", "../../target/debug/tern-example");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with `promise`, or rejects if it has not settled within `cap` ms (a guard against hangs, not a verdict on speed). */
export async function within(promise, cap = EVENTUALLY_CAP_MS, what = "operation") {
	let timer;
	const timeout = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what} did not settle within ${cap} ms`)), cap);
	});
	try {
		return await Promise.race([promise, timeout]);
	} finally {
		clearTimeout(timer);
	}
}

/** A fresh, unique actor key for one test. */
export function uniqueKey(prefix = "k") {
	return [`${prefix}-${randomUUID()}`];
}

/** A predicate for `assert.rejects`: the error is a RivetKit ActorError with this group and code. */
export function isActorError(group, code) {
	return (err) => {
		assert.ok(err && typeof err === "object", `expected an error object, got ${err}`);
		assert.equal(
			`${err.group}.${err.code}`,
			`${group}.${code}`,
			`expected ActorError ${group}.${code}, got ${err?.constructor?.name}: ${err?.group}.${err?.code}: ${err?.message}`,
		);
		return true;
	};
}

/** Summary of an error for diagnostics. */
export function describeError(err) {
	if (!err || typeof err !== "object") return String(err);
	return JSON.stringify({
		class: err.constructor?.name,
		group: err.group,
		code: err.code,
		message: err.message,
		metadata: err.metadata,
		statusCode: err.statusCode,
	});
}

const liveServers = new Set();
process.on("exit", () => {
	for (const s of liveServers) {
		try {
			s.child?.kill("SIGKILL");
		} catch {}
	}
});

/** A running `tern dev` process with its own data directory and port. */
export class TernServer {
	constructor({ port, dataDir, bin }) {
		this.port = port;
		this.dataDir = dataDir;
		this.bin = bin;
		this.endpoint = `http://127.0.0.1:${port}`;
		this.child = undefined;
		this.exited = undefined;
		this.log = [];
		this.clients = new Set();
	}

	/** Spawns the process and waits until `GET /metadata` answers 200. */
	async start() {
		const args = ["dev", "--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir];
		const child = spawn(this.bin, args, {
			stdio: ["ignore", "pipe", "pipe"],
			env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info", NO_COLOR: "1" },
		});
		this.child = child;
		liveServers.add(this);
		const keep = (chunk) => {
			this.log.push(chunk.toString());
			if (this.log.length > 2000) this.log.splice(0, this.log.length - 2000);
		};
		child.stdout.on("data", keep);
		child.stderr.on("data", keep);
		this.exited = new Promise((resolve) => {
			child.on("exit", (code, signal) => {
				liveServers.delete(this);
				resolve({ code, signal });
			});
		});
		let exitedEarly;
		this.exited.then((e) => {
			exitedEarly = e;
		});
		const deadline = Date.now() + START_CAP_MS;
		let last;
		for (;;) {
			if (exitedEarly) {
				throw new Error(`tern exited before answering /metadata: ${JSON.stringify(exitedEarly)}\n${this.logTail()}`);
			}
			try {
				const res = await fetch(`${this.endpoint}/metadata?namespace=default`, { signal: AbortSignal.timeout(2000) });
				await res.arrayBuffer();
				if (res.status === 200) return this;
				last = `status ${res.status}`;
			} catch (err) {
				last = err.message;
			}
			if (Date.now() >= deadline) {
				await this.kill9();
				throw new Error(`tern did not answer GET /metadata with 200 within ${START_CAP_MS} ms (last: ${last})\n${this.logTail()}`);
			}
			await sleep(100);
		}
	}

	/** The last lines the server printed. */
	logTail(lines = 40) {
		return this.log.join("").split("\n").slice(-lines).join("\n");
	}

	/** Disposes the clients made with `client()`; failures are ignored (the server may be gone). */
	async disposeClients() {
		const clients = [...this.clients];
		this.clients.clear();
		await Promise.all(clients.map((c) => within(Promise.resolve(c.dispose()), 5000, "client.dispose()").catch(() => {})));
	}

	/** Graceful stop: SIGTERM, then wait for the process to exit. Fails if it does not exit within the cap. */
	async stop() {
		if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
		this.child.kill("SIGTERM");
		const res = await within(this.exited, STOP_CAP_MS, "exit after SIGTERM").catch(() => "timeout");
		if (res === "timeout") {
			await this.kill9();
			throw new Error(`tern did not exit within ${STOP_CAP_MS} ms of SIGTERM\n${this.logTail()}`);
		}
		return res;
	}

	/** Hard kill: SIGKILL, then wait for the process to be gone. */
	async kill9() {
		if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
		this.child.kill("SIGKILL");
		return await this.exited;
	}

	/** Stops (SIGTERM, or SIGKILL with `{ hard: true }`) and starts again with the same data directory and port. */
	async restart({ hard = false } = {}) {
		if (hard) await this.kill9();
		else await this.stop();
		await this.start();
		return this;
	}

	/** A RivetKit client for this server; disposed by `close()`. */
	client(encoding = "bare", extra = {}) {
		const client = createClient({ endpoint: this.endpoint, encoding, disableMetadataLookup: false, ...extra });
		this.clients.add(client);
		return client;
	}

	/** Raw `fetch` against the server; `path` starts with `/`. */
	async fetch(pathAndQuery, init = {}) {
		return await fetch(`${this.endpoint}${pathAndQuery}`, { signal: AbortSignal.timeout(30_000), ...init });
	}

	/** Raw fetch that parses a JSON body (or keeps the text if it is not JSON). */
	async fetchJson(pathAndQuery, init = {}) {
		const res = await this.fetch(pathAndQuery, init);
		const text = await res.text();
		let body;
		try {
			body = text.length ? JSON.parse(text) : undefined;
		} catch {
			body = text;
		}
		return { status: res.status, headers: res.headers, body, text };
	}

	/** Management call: puts an awake actor to sleep (`POST /actors/{id}/sleep`). */
	async sleepActor(actorId) {
		return await this.fetchJson(`/actors/${encodeURIComponent(actorId)}/sleep?namespace=default`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: "{}",
		});
	}

	/** Stops the server and removes its data directory (unless `TERN_KEEP_DATA` is set). */
	async close() {
		await this.disposeClients();
		try {
			await this.stop();
		} finally {
			if (!process.env.TERN_KEEP_DATA) fs.rmSync(this.dataDir, { recursive: true, force: true });
		}
	}
}

/**
 * Starts a `dev` server on a free port with a fresh temporary data directory: the stock `tern` binary, or
 * `binary` (e.g. `exampleBinary()`).
 */
export async function startServer({ binary } = {}) {
	const bin = binary ?? ternBinary();
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tern-js-"));
	const port = await freePort();
	const server = new TernServer({ port, dataDir, bin });
	await server.start();
	return server;
}

/** Awaits a connection's first `connected` state, within a cap. */
export async function connected(conn, what = "connection") {
	await within(conn.ready, EVENTUALLY_CAP_MS, `${what} ready`);
	return conn;
}

// ---------------------------------------------------------------------------------------------------------------
// A real cluster: `tern node` processes on loopback, mutual-TLS QUIC between them, certificates from `tern ca`.

/** The admin token every cluster node is started with. */
export const CLUSTER_TOKEN = "SECRET";
/** How long the cluster may take for every node to list every other one `alive`. */
const CONVERGE_CAP_MS = 60_000;

/** One `tern node` of a cluster; its output goes to `logPath`. */
export class ClusterNode {
	constructor({ bin, name, region, port, quicPort, dir, caDir }) {
		Object.assign(this, { bin, name, region, port, quicPort, dir, caDir });
		this.endpoint = `http://127.0.0.1:${port}`;
		this.quicAddr = `127.0.0.1:${quicPort}`;
		this.logPath = path.join(dir, "node.log");
		this.clients = new Set();
	}

	/** Spawns the process (`join`: the seed's QUIC address, or none; `voters`: the `--voters` value). */
	spawn({ join, voters }) {
		const args = [
			"node",
			"--region", this.region,
			"--listen", `127.0.0.1:${this.port}`,
			"--quic-listen", this.quicAddr,
			"--data-dir", path.join(this.dir, "data"),
			"--tls-ca", path.join(this.caDir, "ca.pem"),
			"--tls-cert", path.join(this.caDir, `${this.name}.pem`),
			"--tls-key", path.join(this.caDir, `${this.name}.key`),
			"--admin-token", CLUSTER_TOKEN,
			"--profile", "lan",
			"--voters", voters,
		];
		if (join) args.push("--join", join);
		const log = fs.openSync(this.logPath, "a");
		this.child = spawn(this.bin, args, {
			stdio: ["ignore", log, log],
			env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info", NO_COLOR: "1" },
		});
		fs.closeSync(log);
		liveServers.add(this);
		this.exited = new Promise((resolve) => {
			this.child.on("exit", (code, signal) => {
				liveServers.delete(this);
				resolve({ code, signal });
			});
		});
	}

	/** Whether the process has exited. */
	get dead() {
		return !this.child || this.child.exitCode !== null || this.child.signalCode !== null;
	}

	/** `GET /cluster/members` as this node sees it. */
	async members() {
		const res = await fetch(`${this.endpoint}/cluster/members`, {
			headers: { authorization: `Bearer ${CLUSTER_TOKEN}` },
			signal: AbortSignal.timeout(5000),
		});
		const text = await res.text();
		if (res.status !== 200) throw new Error(`GET /cluster/members on ${this.name}: ${res.status} ${text}`);
		return JSON.parse(text).members;
	}

	/** A RivetKit client whose endpoint is this node; disposed by the cluster's `close()`. */
	client(encoding = "bare", extra = {}) {
		const client = createClient({ endpoint: this.endpoint, encoding, disableMetadataLookup: false, ...extra });
		this.clients.add(client);
		return client;
	}

	async disposeClients() {
		const clients = [...this.clients];
		this.clients.clear();
		await Promise.all(clients.map((c) => within(Promise.resolve(c.dispose()), 5000, "client.dispose()").catch(() => {})));
	}

	async kill9() {
		if (this.dead) return;
		this.child.kill("SIGKILL");
		await this.exited;
	}
}

/** A running cluster of `tern node` processes in one temporary directory. */
export class TernCluster {
	constructor(dir, nodes) {
		this.dir = dir;
		this.nodes = nodes;
	}

	/** Where each node logs, for failure messages. */
	logPaths() {
		return this.nodes.map((n) => `${n.name}: ${n.logPath}`).join("\n");
	}

	/**
	 * Kills every node (SIGKILL), then removes the directory, unless `keep` (e.g. after a failure, for the logs) or
	 * `TERN_KEEP_DATA` is set.
	 */
	async close({ keep = false } = {}) {
		await Promise.all(this.nodes.map((n) => n.disposeClients()));
		await Promise.all(this.nodes.map((n) => n.kill9()));
		if (keep || process.env.TERN_KEEP_DATA) return;
		fs.rmSync(this.dir, { recursive: true, force: true });
	}
}

/**
 * Starts a cluster: a CA and one certificate per node (`tern ca init` / `tern ca issue`), then one `tern node` per
 * `{ name, region }` on loopback (free TCP gateway ports, free UDP QUIC ports), every node a voter, all but the first
 * joining through the first. Resolves once every node answers `/metadata` and lists every node `alive`.
 */
export async function startCluster(specs = [
	{ name: "iad-1", region: "iad" },
	{ name: "fra-1", region: "fra" },
	{ name: "syd-1", region: "syd" },
]) {
	const bin = ternBinary();
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tern-js-cluster-"));
	const caDir = path.join(dir, "ca");
	const cluster = new TernCluster(dir, []);
	try {
		await runCli(bin, ["ca", "init", "--dir", caDir]);
		for (const { name } of specs) await runCli(bin, ["ca", "issue", "--dir", caDir, "--node", name]);
		const ports = await distinctPorts(freePort, specs.length);
		const quicPorts = await distinctPorts(freeUdpPort, specs.length);
		cluster.nodes = specs.map(({ name, region }, i) => {
			const nodeDir = path.join(dir, name);
			fs.mkdirSync(nodeDir, { recursive: true });
			return new ClusterNode({ bin, name, region, port: ports[i], quicPort: quicPorts[i], dir: nodeDir, caDir });
		});
		const voters = cluster.nodes.map((n) => `${n.name}@${n.quicAddr}`).join(",");
		cluster.nodes.forEach((n, i) => n.spawn({ join: i === 0 ? undefined : cluster.nodes[0].quicAddr, voters }));

		const names = cluster.nodes.map((n) => n.name);
		for (const node of cluster.nodes) {
			await eventually(
				async () => {
					if (node.dead) throw new Error(`${node.name} exited: ${node.child.exitCode ?? node.child.signalCode}`);
					const members = await node.members();
					for (const name of names) {
						const m = members.find((x) => x.id === name);
						assert.equal(m?.state, "alive", `${node.name} sees ${name} as ${m?.state ?? "absent"}`);
					}
				},
				{ cap: CONVERGE_CAP_MS, interval: 200, what: `${node.name} lists ${names.join(", ")} alive` },
			);
		}
		return cluster;
	} catch (err) {
		await cluster.close({ keep: true }).catch(() => {});
		err.message += `\nnode logs (kept):\n${cluster.logPaths()}`;
		throw err;
	}
}
