// Runs the tours of the README and of docs/writing-actors.md exactly as a reader pastes them, against real
// servers, and compares what they print with what the documents show. It fails when an example rots: a renamed
// action, a changed output, an error.
//
//   node readme-tour.js [FILE.md ...]      (from tests/js; default: ../../README.md ../../docs/writing-actors.md)
//
// Each document is one tour, run in its own empty temporary directory with a free port. A fenced block takes part
// when the line just before its opening fence is a marker (an HTML comment, which renderers do not show):
//
//   <!-- tour -->              a shell block: its commands run in one bash session that lasts the whole tour (so
//                              `cd` and variables carry over), one command per line (`\` continues a line).
//                              Lines `# → TEXT` after a command are what it prints (its standard output, line by
//                              line); a command without them may print anything. Every command must exit with 0.
//   <!-- tour: server -->      a shell block starting a node (one command): it runs in the background until the
//                              tour ends (then SIGTERM, and it must stop), and its `# → ` lines must each match a
//                              line it logs, in order.
//   <!-- tour: file=PATH -->   the block is saved as PATH, relative to the session's current directory.
//
// In expected output, `…` stands for any text within a line, `<id>` for an actor id (32 hexadecimal digits) and
// `<ms>` for a number (a timestamp in milliseconds); everything else must match exactly.
//
// What differs from a reader's terminal, and why:
// - The port. The documents say 127.0.0.1:6420 (or localhost:6420); the tour picks a free port P and rewrites
//   every `127.0.0.1:6420` and `localhost:6420` in commands, saved files and expected output to port P, and sets
//   TERN_LISTEN=127.0.0.1:P and TERN_ENDPOINT=http://127.0.0.1:P for commands that rely on the default port
//   (`tern dev` without --listen, the command line's client commands).
// - `cargo run [-q] [--release] [--bin NAME] -- ARGS` runs, with ARGS, the binary that `cargo build --workspace
//   --bins` built in ../../target/debug (or $CARGO_TARGET_DIR/debug) instead of building it again (a release build
//   takes minutes). In a directory without a Cargo.toml, the binary is NAME (default `tern`), as in a checkout. In
//   an application the tour made (docs/writing-actors.md), it is the workspace's binary named like the
//   application's package (tests/todo-app/main.rs), and only after checking that the application's src/main.rs is
//   byte for byte that binary's source, that its Cargo.toml resolves (`cargo metadata --offline` for this
//   platform, with this checkout as ../tern, as the guide says) and that it lists every crate the source names.
// - `npm install NAME@VERSION ...` links tests/js/node_modules into the current directory after checking that it
//   holds each NAME at a VERSION the command asks for (installing 239 packages takes minutes here).
//
// Prints one line `readme tour: PASS ...` or `readme tour: FAIL ...` (with the details above it, on stderr).
// TERN_KEEP_DATA=1 keeps the tours' temporary directories.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const TARGET_DIR = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const MARKER = /^<!--\s*tour(?::\s*(server|file=(\S+)))?\s*-->\s*$/;
const OUTPUT = /^# → ?(.*)$/;
const COMMAND_CAP_MS = 60_000;
const SERVER_START_CAP_MS = 60_000;
const SERVER_STOP_CAP_MS = 30_000;

class TourFailure extends Error {}

const fail = (where, message) => {
	throw new TourFailure(`${where}: ${message}`);
};

/** Rewrites the documents' port to the tour's. */
const rewritePort = (text, port) => text.replace(/\b(127\.0\.0\.1|localhost):6420\b/g, `$1:${port}`);

/** A regular expression for one expected line: `…`, `<id>` and `<ms>` are wildcards, the rest is literal. */
function linePattern(expected) {
	const parts = expected.split(/(…|<id>|<ms>)/);
	const source = parts
		.map((p) => {
			if (p === "…") return ".*?";
			if (p === "<id>") return "[0-9a-f]{32}";
			if (p === "<ms>") return "[0-9]+";
			return p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
		})
		.join("");
	return new RegExp(`^${source}$`);
}

/** The tour's steps in a markdown file: marked fenced blocks, in order. */
function parseTour(file) {
	const lines = fs.readFileSync(file, "utf8").split("\n");
	const rel = path.relative(ROOT, file);
	const steps = [];
	for (let i = 0; i < lines.length; i++) {
		const marker = lines[i].match(MARKER);
		if (!marker) continue;
		const fence = lines[i + 1]?.match(/^(```+)\s*(\S*)\s*$/);
		if (!fence) fail(`${rel}:${i + 1}`, "a tour marker must be followed directly by a fenced code block");
		const start = i + 2;
		let end = start;
		while (end < lines.length && lines[end] !== fence[1]) end++;
		if (end === lines.length) fail(`${rel}:${i + 2}`, "unterminated code block");
		const body = lines.slice(start, end);
		const kind = marker[1] === "server" ? "server" : marker[2] ? "file" : "shell";
		steps.push({ kind, path: marker[2], body, rel, line: start + 1, where: `${rel}:${start + 1}` });
		i = end;
	}
	return steps;
}

/** Splits a shell block into commands, each with the output lines that follow it. */
function parseCommands(step) {
	const commands = [];
	let current;
	for (let j = 0; j < step.body.length; j++) {
		const text = step.body[j];
		const output = text.match(OUTPUT);
		if (output) {
			if (!current) fail(`${step.rel}:${step.line + j}`, "an output line that follows no command");
			current.expected.push(output[1]);
			continue;
		}
		if (/^\s*(#.*)?$/.test(text)) {
			current = undefined;
			continue;
		}
		let command = text;
		const first = j;
		while (/\\$/.test(command.trimEnd()) && j + 1 < step.body.length) command += `\n${step.body[++j]}`;
		current = { text: command, expected: [], where: `${step.rel}:${step.line + first}` };
		commands.push(current);
	}
	return commands;
}

async function freePort() {
	return await new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

/** One bash process for the whole tour; commands run one at a time and report their status after a marker. */
class Session {
	constructor(dir, env) {
		this.child = spawn("bash", ["--noprofile", "--norc"], { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"] });
		this.stdout = "";
		this.stderr = "";
		this.child.stdout.on("data", (c) => {
			this.stdout += c;
			this.wake?.();
		});
		this.child.stderr.on("data", (c) => (this.stderr += c));
		this.child.on("exit", () => this.wake?.());
		this.child.stdin.write("set -o pipefail\n");
	}

	/** Runs one command; resolves with its standard output, standard error and exit status. */
	async run(command, where) {
		this.stdout = "";
		this.stderr = "";
		// A group keeps `cd` and assignments in this shell; no command may read the rest of the tour as its input.
		this.child.stdin.write(`{ ${command}\n} </dev/null\nprintf '\\036%s\\036' "$?"\n`);
		const deadline = Date.now() + COMMAND_CAP_MS;
		for (;;) {
			const done = this.stdout.match(/\x1e(\d+)\x1e$/);
			if (done) return { stdout: this.stdout.slice(0, done.index), stderr: this.stderr, status: Number(done[1]) };
			if (this.child.exitCode !== null) fail(where, `the shell exited (${this.child.exitCode})\n${this.stderr}`);
			if (Date.now() > deadline) {
				fail(where, `the command did not finish within ${COMMAND_CAP_MS / 1000} s\n${this.stdout}\n${this.stderr}`);
			}
			await new Promise((resolve) => {
				this.wake = resolve;
				setTimeout(resolve, 200);
			});
		}
	}

	/** The session's current directory. */
	async cwd() {
		return (await this.run("pwd", "pwd")).stdout.trim();
	}

	close() {
		this.child.stdin.end();
		this.child.kill("SIGKILL");
	}
}

/** Parses `cargo run [-q] [--release] [--bin NAME] -- ARGS`; undefined for any other command. */
function cargoRun(command) {
	const m = command.match(/^cargo run((?:\s+(?:-q|--quiet|--release|--bin\s+\S+))*)\s+--(\s+[\s\S]*)?$/);
	if (!m) return undefined;
	const bin = m[1].match(/--bin\s+(\S+)/)?.[1];
	return { bin, args: (m[2] ?? "").replace(/\\\n/g, " ").trim() };
}

/** The platform cargo builds for here (`cargo metadata` resolves only its packages, all of them on disk). */
const hostTriple = () => execFileSync("rustc", ["-vV"], { encoding: "utf8" }).match(/^host: (\S+)$/m)[1];

/** The workspace's binary targets by name: their source files. */
function workspaceBins() {
	const meta = JSON.parse(
		execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps", "--offline"], {
			cwd: ROOT,
			encoding: "utf8",
			maxBuffer: 256 << 20,
		}),
	);
	const bins = new Map();
	for (const pkg of meta.packages) {
		for (const t of pkg.targets) if (t.kind.includes("bin")) bins.set(t.name, t.src_path);
	}
	return bins;
}

/**
 * What `cargo run ... -- ARGS` in `cwd` stands for: the prebuilt binary, after checking that an application's
 * manifest resolves and that its source is the one the workspace built.
 */
function resolveCargoRun(run, cwd, where) {
	const manifest = path.join(cwd, "Cargo.toml");
	let name = run.bin;
	if (fs.existsSync(manifest) && path.resolve(cwd) !== ROOT) {
		let meta;
		try {
			meta = JSON.parse(
				execFileSync("cargo", ["metadata", "--format-version", "1", "--offline", "--filter-platform", hostTriple()], {
					cwd,
					encoding: "utf8",
					maxBuffer: 256 << 20,
					stdio: ["ignore", "pipe", "pipe"],
				}),
			);
		} catch (err) {
			fail(where, `the application's Cargo.toml does not resolve:\n${err.stderr || err.message}`);
		}
		const app = meta.packages.find((p) => p.id === meta.resolve.root);
		name ??= app.name;
		const deps = new Set(app.dependencies.map((d) => (d.rename ?? d.name).replace(/-/g, "_")));
		const node = meta.packages.find((p) => p.name === "tern-node");
		if (!node || fs.realpathSync(path.dirname(node.manifest_path)) !== fs.realpathSync(path.join(ROOT, "node"))) {
			fail(where, `the application does not depend on this checkout's tern-node (found ${node?.manifest_path})`);
		}
		const mainPath = path.join(cwd, "src", "main.rs");
		const source = fs.readFileSync(mainPath, "utf8");
		const named = new Set([...source.matchAll(/(?<![\w.:])([a-z_][a-z0-9_]*)::/g)].map((m) => m[1]));
		for (const builtin of ["std", "core", "alloc", "crate", "self", "super"]) named.delete(builtin);
		const missing = [...named].filter((c) => !deps.has(c));
		if (missing.length) fail(where, `src/main.rs uses ${missing.join(", ")}, which Cargo.toml does not list`);
		const built = workspaceBins().get(name);
		if (!built) fail(where, `the workspace has no binary \`${name}\` to stand for the application`);
		if (fs.readFileSync(built, "utf8") !== source) {
			fail(where, `src/main.rs differs from ${path.relative(ROOT, built)}, the source of the workspace's \`${name}\``);
		}
	}
	name ??= "tern";
	const bin = path.join(TARGET_DIR, "debug", name);
	if (!fs.existsSync(bin)) fail(where, `${bin} is missing; build it with \`cargo build --workspace --bins\``);
	return `'${bin}' ${run.args}`;
}

/** A node started by a `server` step, logging into a buffer. */
class Server {
	constructor(command, cwd, env, where) {
		this.where = where;
		this.log = "";
		this.child = spawn("bash", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
		const keep = (c) => (this.log += c);
		this.child.stdout.on("data", keep);
		this.child.stderr.on("data", keep);
		this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
	}

	async waitFor(patterns) {
		const deadline = Date.now() + SERVER_START_CAP_MS;
		let exited;
		this.exited.then((e) => (exited = e));
		for (;;) {
			const lines = this.log.split("\n");
			let at = 0;
			const missing = patterns.find((p) => {
				const found = lines.findIndex((l, k) => k >= at && p.test(l));
				if (found < 0) return true;
				at = found + 1;
				return false;
			});
			if (!missing) return;
			if (exited) fail(this.where, `the server exited (${JSON.stringify(exited)}) before logging ${missing}`);
			if (Date.now() > deadline) fail(this.where, `the server did not log ${missing} within 60 s`);
			await new Promise((r) => setTimeout(r, 100));
		}
	}

	async stop() {
		if (this.child.exitCode !== null || this.child.signalCode !== null) return await this.exited;
		process.kill(-this.child.pid, "SIGTERM");
		let timer;
		const cap = new Promise((r) => (timer = setTimeout(() => r("timeout"), SERVER_STOP_CAP_MS)));
		const res = await Promise.race([this.exited, cap]);
		clearTimeout(timer);
		if (res === "timeout") {
			process.kill(-this.child.pid, "SIGKILL");
			fail(this.where, `the server did not stop within ${SERVER_STOP_CAP_MS / 1000} s of SIGTERM`);
		}
		return res;
	}
}

/** Compares a command's output with the lines the document shows. */
function checkOutput(command, actual, port) {
	const expected = command.expected.map((l) => rewritePort(l, port));
	const got = actual.endsWith("\n") ? actual.slice(0, -1) : actual;
	const gotLines = got === "" ? [] : got.split("\n");
	const same = gotLines.length === expected.length && expected.every((e, k) => linePattern(e).test(gotLines[k]));
	if (!same) {
		fail(
			command.where,
			`a command printed something else than the document shows\n$ ${command.text}\n` +
				`--- expected\n${expected.join("\n")}\n--- got\n${got}\n---`,
		);
	}
}

/** Runs one document's tour; returns how many commands and files it ran. */
async function runTour(file, npmShim) {
	const steps = parseTour(file);
	const rel = path.relative(ROOT, file);
	if (!steps.some((s) => s.kind === "server")) fail(rel, "no `<!-- tour: server -->` block: the tour has no node");
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tern-tour-"));
	const work = path.join(dir, "session");
	fs.mkdirSync(work);
	// docs/writing-actors.md makes its application next to a checkout of Tern in ../tern.
	fs.symlinkSync(ROOT, path.join(work, "tern"));
	const port = await freePort();
	const env = {
		...process.env,
		TERN_LISTEN: `127.0.0.1:${port}`,
		TERN_ENDPOINT: `http://127.0.0.1:${port}`,
		NO_COLOR: "1",
	};
	delete env.RIVET_LOG_LEVEL;
	const session = new Session(work, env);
	const servers = [];
	let commands = 0;
	let files = 0;
	let checked = 0;
	try {
		await session.run(npmShim, "npm shim");
		for (const step of steps) {
			if (step.kind === "file") {
				const target = path.resolve(await session.cwd(), step.path);
				fs.mkdirSync(path.dirname(target), { recursive: true });
				fs.writeFileSync(target, rewritePort(`${step.body.join("\n")}\n`, port));
				files++;
				continue;
			}
			const list = parseCommands(step);
			if (step.kind === "server") {
				if (list.length !== 1) fail(step.where, "a server block holds exactly one command");
				const [command] = list;
				const cwd = await session.cwd();
				let text = rewritePort(command.text, port);
				const run = cargoRun(text);
				if (run) text = `exec ${resolveCargoRun(run, cwd, command.where)}`;
				const server = new Server(text, cwd, env, command.where);
				servers.push(server);
				await server.waitFor(command.expected.map((e) => linePattern(rewritePort(e, port))));
				commands++;
				checked += command.expected.length;
				continue;
			}
			for (const command of list) {
				let text = rewritePort(command.text, port);
				const run = cargoRun(text);
				if (run) text = resolveCargoRun(run, await session.cwd(), command.where);
				const result = await session.run(text, command.where);
				if (result.status !== 0) {
					fail(
						command.where,
						`a command exited with ${result.status}\n$ ${command.text}\n` +
							`--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}---`,
					);
				}
				checkOutput(command, result.stdout, port);
				commands++;
				checked += command.expected.length;
			}
		}
		if (checked === 0) fail(rel, "the tour shows no output to check");
		while (servers.length) {
			await servers[0].stop();
			servers.shift();
		}
	} catch (err) {
		for (const server of servers) {
			await server.stop().catch(() => {});
			const tail = server.log.split("\n").slice(-30).join("\n");
			if (err instanceof TourFailure) err.message += `\n--- server log (${server.where})\n${tail}`;
		}
		throw err;
	} finally {
		session.close();
		if (!process.env.TERN_KEEP_DATA) fs.rmSync(dir, { recursive: true, force: true });
	}
	return { rel, commands, files, checked };
}

/** `npm install NAME@VERSION ...` for the tours: links tests/js/node_modules after checking the versions. */
function npmInstallFromTests(specs) {
	const modules = path.join(HERE, "node_modules");
	if (!specs.length || specs.some((s) => s.startsWith("-"))) {
		throw new Error(`the tour runs \`npm install NAME@VERSION ...\` only, not \`npm install ${specs.join(" ")}\``);
	}
	for (const spec of specs) {
		const at = spec.lastIndexOf("@");
		const [name, wanted] = at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [spec, ""];
		const manifest = path.join(modules, name, "package.json");
		if (!fs.existsSync(manifest)) {
			throw new Error(`${name} is not in tests/js/node_modules (run npm install in tests/js)`);
		}
		const { version } = JSON.parse(fs.readFileSync(manifest, "utf8"));
		// `8` means any 8.x.y, `2.3` any 2.3.y, `2.3.19` exactly that.
		if (wanted && !`${version}.`.startsWith(`${wanted}.`)) {
			throw new Error(`the tour installs ${name}@${wanted}, but tests/js has ${name} ${version}`);
		}
	}
	if (!fs.existsSync("node_modules")) fs.symlinkSync(modules, "node_modules");
}

async function main() {
	const args = process.argv.slice(2);
	if (args[0] === "--npm-install") {
		try {
			npmInstallFromTests(args.slice(1));
		} catch (err) {
			console.error(`npm install (tour): ${err.message}`);
			process.exit(1);
		}
		return;
	}
	const files = args.length
		? args.map((f) => path.resolve(f))
		: ["README.md", "docs/writing-actors.md"].map((f) => path.resolve(ROOT, f));
	const self = fileURLToPath(import.meta.url);
	const install = `'${process.execPath}' '${self}' --npm-install "$@"`;
	const npmShim = `npm() { if [ "$1" = install ]; then shift; ${install}; else command npm "$@"; fi; }`;
	const started = Date.now();
	const done = [];
	try {
		for (const file of files) done.push(await runTour(file, npmShim));
	} catch (err) {
		console.error(err instanceof TourFailure ? err.message : err.stack);
		console.log(`readme tour: FAIL (${err.message.split("\n")[0]})`);
		process.exit(1);
	}
	const secs = ((Date.now() - started) / 1000).toFixed(1);
	const summary = done.map((d) => `${d.rel}: ${d.commands} commands, ${d.files} files, ${d.checked} output lines`);
	console.log(`readme tour: PASS (${summary.join("; ")}) in ${secs} s`);
}

await main();
