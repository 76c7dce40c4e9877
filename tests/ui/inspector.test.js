// The inspector web page (/ui/) in Debian's chromium, driven by playwright-core, against real nodes: a lone
// `tern dev` (the page opens without a token) and a three-node `tern node` cluster with an admin token (a wrong
// token is refused, the right one signs in; an actor found by key, its state edited and read back through the
// client API; an action called and its event seen in the live stream; SQL that creates a table, then the table
// in the list; confirmations; a node killed with kill -9 shown down while its actor's home moves to the replica,
// live). Views are checked at 1280×800 and at phone width, keyboard paths included.
//
//   npm test                        (from tests/ui; TERN_BIN picks the binary, default ../../target/debug/tern)
//   TERN_UI_SCREENSHOTS=../../docs npm test     also writes the README's screenshots there
//
// On failure the nodes' logs are kept and their directory printed.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { eventually, http, startCluster, startDev, tempDir } from "./cluster.js";

const TOKEN = `ui-${randomUUID()}`;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const T = { timeout: 90_000 };
const SCREENSHOTS = process.env.TERN_UI_SCREENSHOTS ? path.resolve(process.env.TERN_UI_SCREENSHOTS) : null;

const dir = tempDir();
let browser;
let cluster;
let page;
let failed = false;

before(async () => {
	browser = await chromium.launch({ executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium", args: ["--no-sandbox"] });
	cluster = await startCluster(dir, TOKEN);
});

after(async () => {
	await browser?.close();
	await cluster?.close();
	if (failed) console.error(`inspector tests failed; logs kept in ${dir}`);
	else fs.rmSync(dir, { recursive: true, force: true });
});

/** A test that keeps the logs when it fails. */
function uiTest(name, fn) {
	test(name, T, async () => {
		try {
			await fn();
		} catch (err) {
			failed = true;
			throw err;
		}
	});
}

/** A new page that fails the test on any script error it reports. */
async function newPage(viewport = DESKTOP) {
	const context = await browser.newContext({ viewport, acceptDownloads: true });
	const p = await context.newPage();
	p.scriptErrors = [];
	p.on("pageerror", (err) => p.scriptErrors.push(err.message));
	p.on("console", (msg) => {
		if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) p.scriptErrors.push(msg.text());
	});
	return p;
}

/** Waits until `locator`'s text matches `pattern`; returns the text. */
async function textMatching(locator, pattern, cap = 15_000) {
	return await eventually(
		async () => {
			const text = (await locator.first().textContent({ timeout: 1000 })) ?? "";
			assert.match(text, pattern);
			return text;
		},
		{ cap, what: `text matching ${pattern}` },
	);
}

/** Asserts that the page is no wider than the screen (nothing to scroll sideways but inside tables). */
async function fitsWidth(p, what) {
	const { scroll, inner } = await p.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
	assert.ok(scroll <= inner, `${what}: the page is ${scroll}px wide on a ${inner}px screen`);
}

async function screenshot(p, name) {
	const file = path.join(SCREENSHOTS ?? dir, `inspector-${name}.png`);
	await p.screenshot({ path: file });
	assert.ok(fs.statSync(file).size > 5000, `${file} holds a picture`);
}

/** Creates (or finds) an actor through a node's client API; returns its id. */
async function actor(node, name, key) {
	const { status, body } = await http(node.endpoint, "PUT", "/actors", { body: { name, key } });
	assert.equal(status, 200, JSON.stringify(body));
	return body.actor.actor_id;
}

/** A stateless action through a node's client API (no token: a public route). */
async function call(node, id, action, args) {
	const { status, body } = await http(node.endpoint, "POST", `/gateway/${id}/action/${action}`, { body: { args } });
	assert.equal(status, 200, JSON.stringify(body));
	return body.output;
}

async function signIn(p, node) {
	await p.goto(`${node.endpoint}/ui/`);
	await p.getByLabel("Admin token").fill(TOKEN);
	await p.getByLabel("Admin token").press("Enter");
	await textMatching(p.locator("#whoami"), new RegExp(node.name));
}

uiTest("tern dev prints the page's address and the page opens without a token", async () => {
	const dev = await startDev(dir);
	try {
		await eventually(() => dev.process.log().includes(`inspector page on ${dev.endpoint}/ui/`), { what: "tern dev logs the page's address" });
		const p = await newPage();
		await p.goto(`${dev.endpoint}/ui/`);
		await textMatching(p.locator(".status"), /1 node in 1 region: 1 alive/);
		assert.equal(await p.getByLabel("Admin token").count(), 0, "no sign-in form on an open node");
		await textMatching(p.locator("#whoami"), /open: no admin token/);
		// The page's own changes pass the node's browser-origin check (its own origin), without a token.
		const id = await actor(dev, "counter", "open-node");
		await p.goto(`${dev.endpoint}/ui/#/actors?name=counter`);
		const row = p.locator(`tr[data-actor-id="${id}"]`);
		await textMatching(row, /awake/);
		await row.getByRole("button", { name: /^Sleep/ }).click();
		await p.getByRole("dialog").getByRole("button", { name: "Sleep" }).click();
		await eventually(async () => (await http(dev.endpoint, "GET", `/actors?actor_ids=${id}`)).body.actors[0].sleep_ts !== null, { what: "the actor sleeps" });
		assert.deepEqual(p.scriptErrors, []);
		await p.context().close();
	} finally {
		await dev.process.kill9();
	}
});

uiTest("a wrong admin token is refused with the API's error; the right one signs in and is kept for the tab only", async () => {
	const [iad] = cluster.nodes;
	page = await newPage();
	const sent = [];
	page.on("request", (r) => {
		if (r.url().endsWith("/cluster/members")) sent.push(r.headers().authorization ?? null);
	});
	await page.goto(`${iad.endpoint}/ui/`);
	const input = page.getByLabel("Admin token");
	await input.waitFor();
	assert.ok(await input.evaluate((el) => el === document.activeElement), "the token field has the focus");
	await page.keyboard.type("not-the-token");
	await page.keyboard.press("Enter");
	await textMatching(page.locator(".error"), /api\.unauthorized/);
	assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused token is not kept");
	assert.ok(sent.includes("Bearer not-the-token"), `sent: ${sent}`);

	await input.fill(TOKEN);
	await page.keyboard.press("Enter");
	await textMatching(page.locator(".status"), /3 nodes in 3 regions: 3 alive/);
	await textMatching(page.locator("#whoami"), /iad-1/);
	for (const region of ["iad", "fra", "syd"]) {
		await textMatching(page.locator(`[data-region="${region}"]`), new RegExp(`${region}-1.*alive`, "s"));
	}
	const storage = await page.evaluate(() => ({ session: Object.values(sessionStorage), local: localStorage.length }));
	assert.deepEqual(storage, { session: [TOKEN], local: 0 });
	assert.ok(sent.includes(`Bearer ${TOKEN}`));
	await page.setViewportSize(PHONE);
	await fitsWidth(page, "cluster view");
	await page.setViewportSize(DESKTOP);
});

let counterId;
let counterKey;
/** A sqlite actor homed on syd-1, whose home the last test kills. */
let dbId;

uiTest("an actor found by key, its state edited (invalid JSON refused), the change read through the client API", async () => {
	const [, fra, syd] = cluster.nodes;
	counterKey = `ui-${randomUUID().slice(0, 8)}`;
	counterId = await actor(fra, "counter", counterKey);
	assert.equal(await call(fra, counterId, "increment", [5]), 5);
	for (const [i, node] of cluster.nodes.entries()) await actor(node, "counter", `other-${i}-${randomUUID().slice(0, 8)}`);

	await page.goto(`${cluster.nodes[0].endpoint}/ui/#/actors?name=counter`);
	await eventually(async () => (await page.locator("tbody tr[data-actor-id]").count()) >= 4, { what: "the counters are listed" });
	await screenshot(page, "actors");
	await page.setViewportSize(PHONE);
	await fitsWidth(page, "actor list");
	await page.setViewportSize(DESKTOP);
	const filters = page.locator("form.filters");
	await filters.getByLabel("Name").selectOption("counter");
	await filters.getByLabel("Key prefix").fill(counterKey.slice(0, 7));
	await page.getByRole("button", { name: "Search" }).click();
	const rows = page.locator("tbody tr[data-actor-id]");
	await eventually(async () => (await rows.count()) === 1, { what: "one counter matches the key prefix" });
	assert.equal(await rows.first().getAttribute("data-actor-id"), counterId);
	await textMatching(rows.first(), /fra-1/);

	await rows.first().getByRole("link", { name: counterKey }).click();
	await textMatching(page.locator(".summary"), /Home node\s*fra-1/);
	const editor = page.getByLabel("State (JSON)");
	await eventually(async () => JSON.parse(await editor.inputValue()).count === 5, { what: "the state shows count 5" });

	await editor.fill('{"count": ');
	await page.getByRole("button", { name: "Save state" }).click();
	await textMatching(page.locator(".error"), /not valid JSON/);
	await editor.fill('{"count": "many"}');
	await page.getByRole("button", { name: "Save state" }).click();
	await textMatching(page.locator(".error"), /actor\.invalid_request.*does not fit/);
	assert.equal(await call(syd, counterId, "getCount", []), 5, "refused edits changed nothing");

	await editor.fill('{"count": 42}');
	await page.getByRole("button", { name: "Save state" }).click();
	await textMatching(page.getByRole("status").filter({ hasText: "Saved" }), /Saved at/);
	assert.equal(await call(syd, counterId, "getCount", []), 42, "the client API reads the saved state");
	assert.deepEqual(page.scriptErrors, []);
});

uiTest("an action called from the page: its output, its error's group.code, and its event in the live stream", async () => {
	const [, fra] = cluster.nodes;
	await page.goto(`${cluster.nodes[0].endpoint}/ui/#/actor/${counterId}/live`);
	await page.getByLabel("Events (comma-separated)").fill("newCount");
	await page.getByRole("button", { name: "Connect", exact: true }).click();
	await textMatching(page.locator("p.status"), /^Connected as \w+; subscribed to newCount\.$/);

	await page.getByLabel("Action", { exact: true }).selectOption("increment");
	await page.getByLabel("Arguments (a JSON array)").fill("[1]");
	await page.getByRole("button", { name: "Call" }).click();
	await textMatching(page.locator("pre.output"), /^43$/);
	await textMatching(page.locator('.events li[data-event="newCount"]'), /newCount \[43\]/);

	// A call from another client, through another node, reaches the same stream.
	assert.equal(await call(fra, counterId, "increment", [2]), 45);
	await textMatching(page.locator(".events li").first(), /newCount \[45\]/);
	await screenshot(page, "actor");

	await page.getByLabel("Arguments (a JSON array)").fill('["two"]');
	await page.getByLabel("Arguments (a JSON array)").press("Control+Enter");
	await textMatching(page.locator(".result .error"), /actor\.invalid_request/);
	await page.getByLabel("Arguments (a JSON array)").fill("{");
	await page.getByRole("button", { name: "Call" }).click();
	await textMatching(page.locator(".result .error"), /Not sent: The arguments is not valid JSON/);

	// The stream stays open across tabs and shows in the connections.
	await page.getByRole("link", { name: "Connections" }).click();
	await eventually(async () => (await page.locator("tbody tr").count()) === 1, { what: "the stream's connection is listed" });
	await page.getByRole("link", { name: "Actions & events" }).click();
	await textMatching(page.locator(".events li").first(), /newCount \[45\]/);
	await page.setViewportSize(PHONE);
	await fitsWidth(page, "actor view");
	await page.setViewportSize(DESKTOP);
	await page.getByRole("button", { name: "Disconnect" }).click();
	assert.deepEqual(page.scriptErrors, []);
});

uiTest("SQL that creates a table, the table in the list, rows, SQLite's errors, the session's history, export", async () => {
	const [, fra, syd] = cluster.nodes;
	const id = await actor(syd, "sqlite", `ui-${randomUUID().slice(0, 8)}`);
	dbId = id;
	await page.goto(`${cluster.nodes[0].endpoint}/ui/#/actor/${id}/database`);
	await textMatching(page.locator(".db-tables"), /No tables yet/);
	const sql = page.getByLabel("SQL", { exact: true });
	await sql.fill("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
	await page.getByRole("button", { name: "Run" }).click();
	await textMatching(page.locator('.db-tables li[data-table="items"]'), /items table · 0 rows/);

	await sql.fill("INSERT INTO items (name) VALUES (?1), (?2)");
	await page.getByLabel("Parameters (JSON, optional)").fill('["widget", "gadget"]');
	await sql.press("Control+Enter");
	await textMatching(page.locator('.db-tables li[data-table="items"]'), /2 rows/);
	assert.deepEqual(await call(fra, id, "query", ["SELECT name FROM items ORDER BY id"]), [{ name: "widget" }, { name: "gadget" }]);

	await page.locator('.db-tables li[data-table="items"]').getByRole("button").click();
	await textMatching(page.locator(".db-browser"), /Rows 1–2 of 2/);
	await textMatching(page.locator(".db-browser"), /widget.*gadget/s);

	await sql.fill("SELECT name, length(name) AS n FROM items WHERE name = :name");
	await page.getByLabel("Parameters (JSON, optional)").fill('{"name": "gadget"}');
	await page.getByRole("button", { name: "Run" }).click();
	await textMatching(page.locator(".result table"), /name.*n.*gadget.*6/s);
	await page.locator("nav.tabs").evaluate((tabs) => tabs.scrollIntoView());
	await screenshot(page, "database");

	await sql.fill("SELECT * FROM nope");
	await page.getByLabel("Parameters (JSON, optional)").fill("");
	await page.getByRole("button", { name: "Run" }).click();
	await textMatching(page.locator(".result .error"), /database\.sql_error.*no such table: nope/);
	await sql.fill("DELETE FROM _tern_kv");
	await page.getByRole("button", { name: "Run" }).click();
	await textMatching(page.locator(".result .error"), /database\.statement_not_allowed/);
	const history = await page.locator(".history li").allTextContents();
	assert.equal(history.length, 5, history.join("\n"));
	assert.match(history[0], /DELETE FROM _tern_kv.*database\.statement_not_allowed/);
	assert.match(history[4], /CREATE TABLE items/);

	const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export the database file" }).click()]);
	assert.equal(download.suggestedFilename(), `${id}.db`);
	const file = path.join(dir, "export.db");
	await download.saveAs(file);
	assert.equal(fs.readFileSync(file).subarray(0, 15).toString(), "SQLite format 3");

	await page.setViewportSize(PHONE);
	await fitsWidth(page, "database view");
	await page.setViewportSize(DESKTOP);
	assert.deepEqual(page.scriptErrors, []);
});

uiTest("the key-value store, traces and queue views read the actor; destroy asks first (Escape declines)", async () => {
	const [, fra] = cluster.nodes;
	await page.goto(`${cluster.nodes[0].endpoint}/ui/#/actor/${counterId}/traces`);
	const trace = page.locator(".trace").filter({ hasText: "increment" }).first();
	await textMatching(trace, /increment.*\d+ spans?.*(µs|ms)/s);
	await trace.locator("summary").first().press("Enter");
	await trace.locator(".waterfall .spans .bar").first().waitFor();
	assert.equal(await trace.locator(".waterfall .spans li").count(), Number((await trace.textContent()).match(/(\d+) spans?/)[1]));
	await page.getByRole("link", { name: "Key-value" }).click();
	await textMatching(page.locator("#panel"), /No entries|Key-value entries/);
	await page.getByRole("link", { name: "Queue" }).click();
	await textMatching(page.locator("#panel"), /0 of at most \d+ messages/);

	const doomed = await actor(fra, "counter", `doomed-${randomUUID().slice(0, 8)}`);
	await page.goto(`${cluster.nodes[0].endpoint}/ui/#/actor/${doomed}/state`);
	const destroy = page.locator(".summary").getByRole("button", { name: /^Destroy/ });
	await destroy.click();
	await page.getByRole("dialog").waitFor();
	await page.keyboard.press("Escape");
	await eventually(async () => (await page.getByRole("dialog").count()) === 0, { what: "Escape closes the dialog" });
	assert.equal((await http(fra.endpoint, "GET", `/actors?actor_ids=${doomed}`)).body.actors.length, 1, "declined: still there");
	await destroy.click();
	await page.getByRole("dialog").getByRole("button", { name: "Destroy" }).click();
	await page.waitForURL(/#\/actors$/);
	const [gone] = (await http(fra.endpoint, "GET", `/actors?actor_ids=${doomed}`)).body.actors;
	assert.ok(!gone || gone.destroy_ts !== null, `destroyed: ${JSON.stringify(gone)}`);
	assert.deepEqual(page.scriptErrors, []);
});

uiTest("a node killed with kill -9 is shown down, and its actor's home moves to its replica, live", async () => {
	const [iad, , syd] = cluster.nodes;
	const watcher = await newPage();
	await signIn(watcher, iad);
	await watcher.goto(`${iad.endpoint}/ui/#/actor/${dbId}/replicas`);
	await textMatching(watcher.locator("#panel p.status"), /^Home syd-1, 1 replica/);
	const streaming = watcher.locator('#panel tbody tr[data-state="streaming"]');
	await eventually(async () => (await streaming.count()) === 1, { what: "the replica streams" });
	const replica = await streaming.getAttribute("data-node");
	assert.ok(replica && replica !== "syd-1", replica);

	await page.goto(`${iad.endpoint}/ui/#/cluster`);
	const row = page.locator('tr[data-node="syd-1"]');
	await textMatching(row, /alive/);
	await textMatching(page.locator('[data-region="fra"]'), /[1-9]\d* actors? listed/);
	await screenshot(page, "cluster");
	await syd.process.kill9();
	await eventually(async () => (await row.getAttribute("data-state")) === "down", { cap: 30_000, interval: 250, what: "syd-1 shown down" });
	await textMatching(page.locator(".status"), /2 alive, 1 down/);

	await textMatching(watcher.locator("#panel p.status"), new RegExp(`^Home ${replica}`), 60_000);
	await textMatching(watcher.locator(".moves"), new RegExp(`the home moved from syd-1 to ${replica}`));
	assert.deepEqual(page.scriptErrors, []);
	assert.deepEqual(watcher.scriptErrors, []);
	await watcher.context().close();
});
