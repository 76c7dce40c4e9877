// Real nodes for the inspector's browser tests: a three-node `tern node` cluster on loopback (certificates from
// `tern ca init` / `tern ca issue`, every node a voter, LAN timing so a dead node is seen down within seconds), and
// a lone `tern dev`. Every process logs to a file in the run's temporary directory, kept when a test fails.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { distinctPorts, eventually, freePort, freeUdpPort, runCli } from "../js/test/local.js";

export { eventually };

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The `tern` binary: `$TERN_BIN`, else the workspace's debug build. */
export function ternBinary() {
	const bin = path.resolve(HERE, process.env.TERN_BIN || "../../target/debug/tern");
	if (!fs.existsSync(bin)) throw new Error(`tern not found at ${bin}: build it with \`cargo build --bin tern\` or set TERN_BIN`);
	return bin;
}

const running = new Set();
process.on("exit", () => {
	for (const child of running) child.kill("SIGKILL");
});

/** One process with its log file. */
class Process {
	constructor(bin, args, logPath) {
		this.logPath = logPath;
		const log = fs.openSync(logPath, "a");
		this.child = spawn(bin, args, { stdio: ["ignore", log, log], env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1" } });
		fs.closeSync(log);
		running.add(this.child);
		this.exited = new Promise((resolve) => {
			this.child.on("exit", (code, signal) => {
				running.delete(this.child);
				resolve({ code, signal });
			});
		});
	}

	get dead() {
		return this.child.exitCode !== null || this.child.signalCode !== null;
	}

	log() {
		return fs.existsSync(this.logPath) ? fs.readFileSync(this.logPath, "utf8") : "";
	}

	async kill9() {
		if (this.dead) return;
		this.child.kill("SIGKILL");
		await this.exited;
	}
}

/** Plain HTTP to a node: `{status, body}` with the body parsed as JSON when it is. */
export async function http(endpoint, method, route, { body, token } = {}) {
	const headers = {};
	if (token) headers.authorization = `Bearer ${token}`;
	if (body !== undefined) headers["content-type"] = "application/json";
	const response = await fetch(`${endpoint}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
	const text = await response.text();
	let parsed = text;
	try {
		parsed = JSON.parse(text);
	} catch {}
	return { status: response.status, body: parsed };
}

/** A three-node cluster (iad-1, fra-1, syd-1) with admin token `token`, once every node lists every node alive. */
export async function startCluster(dir, token) {
	const bin = ternBinary();
	const ca = path.join(dir, "ca");
	const names = [
		["iad-1", "iad"],
		["fra-1", "fra"],
		["syd-1", "syd"],
	];
	await runCli(bin, ["ca", "init", "--dir", ca]);
	for (const [name] of names) await runCli(bin, ["ca", "issue", "--dir", ca, "--node", name]);
	const ports = await distinctPorts(freePort, names.length);
	const quic = await distinctPorts(freeUdpPort, names.length);
	const voters = names.map(([name], i) => `${name}@127.0.0.1:${quic[i]}`).join(",");
	const nodes = names.map(([name, region], i) => {
		const args = [
			"node",
			"--region", region,
			"--zone", `${region}-a`,
			"--listen", `127.0.0.1:${ports[i]}`,
			"--quic-listen", `127.0.0.1:${quic[i]}`,
			"--data-dir", path.join(dir, name),
			"--tls-ca", path.join(ca, "ca.pem"),
			"--tls-cert", path.join(ca, `${name}.pem`),
			"--tls-key", path.join(ca, `${name}.key`),
			"--admin-token", token,
			"--profile", "lan",
			"--voters", voters,
		];
		if (i > 0) args.push("--join", `127.0.0.1:${quic[0]}`);
		const process = new Process(bin, args, path.join(dir, `${name}.log`));
		return { name, region, endpoint: `http://127.0.0.1:${ports[i]}`, process };
	});
	for (const node of nodes) {
		await eventually(
			async () => {
				if (node.process.dead) throw new Error(`${node.name} exited:\n${node.process.log().slice(-3000)}`);
				const { status, body } = await http(node.endpoint, "GET", "/cluster/members", { token });
				if (status !== 200) return false;
				return names.every(([name]) => body.members.find((m) => m.id === name)?.state === "alive");
			},
			{ cap: 60_000, interval: 200, what: `${node.name} lists every node alive` },
		);
	}
	return { nodes, close: () => Promise.all(nodes.map((n) => n.process.kill9())) };
}

/** A lone `tern dev` without an admin token, once its gateway answers. */
export async function startDev(dir) {
	const port = await freePort();
	const endpoint = `http://127.0.0.1:${port}`;
	const process = new Process(ternBinary(), ["dev", "--listen", `127.0.0.1:${port}`, "--data-dir", path.join(dir, "dev")], path.join(dir, "dev.log"));
	await eventually(
		async () => {
			if (process.dead) throw new Error(`tern dev exited:\n${process.log().slice(-3000)}`);
			return (await http(endpoint, "GET", "/health")).status === 200;
		},
		{ cap: 30_000, what: "tern dev answers /health" },
	);
	return { endpoint, process };
}

/** A fresh temporary directory for one run. */
export function tempDir() {
	return fs.mkdtempSync(path.join(os.tmpdir(), "tern-ui-"));
}
