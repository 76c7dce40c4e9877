// The actor's key-value store and schedules, read page by page from the runtime's tables through the inspector's
// SQL route (which may read `_tern_*` tables and never change them). Key 0x03, the actor's inspector token, is
// left out of the key-value pages.

import { execute } from "./api.js";
import * as cbor from "./cbor.js";
import { act, bytesText, compact, fill, fromBase64, h, hex, pager, table, when } from "./dom.js";

const PAGE_SIZE = 50;

/** Bytes of a BLOB cell (`["$Uint8Array", base64]`), or of a text cell. */
function blob(value) {
	if (Array.isArray(value) && value[0] === "$Uint8Array") return fromBase64(value[1]);
	return new TextEncoder().encode(value == null ? "" : String(value));
}

export function kv({ actorId, panel }) {
	const prefix = h("input", { type: "search", spellcheck: "false", autocomplete: "off" });
	const list = h("div", {});
	let page = 0;
	const load = () =>
		act(null, list, async () => {
			const wanted = hex(new TextEncoder().encode(prefix.value)).toUpperCase();
			const { rows } = await execute(
				actorId,
				"SELECT key, value, update_ts FROM _tern_kv WHERE key <> x'03' AND hex(key) LIKE ?1 ORDER BY key LIMIT ?2 OFFSET ?3",
				[`${wanted}%`, PAGE_SIZE + 1, page * PAGE_SIZE],
			);
			const shown = rows.slice(0, PAGE_SIZE);
			fill(
				list,
				table({
					caption: "Key-value entries, in key order",
					empty: page ? "No more entries." : "No entries.",
					rows: shown,
					columns: [
						{ label: "Key", value: (r) => h("code", {}, bytesText(blob(r.key))) },
						{ label: "Value", value: (r) => h("code", {}, bytesText(blob(r.value), 300)) },
						{ label: "Bytes", class: "num", value: (r) => blob(r.value).length },
						{ label: "Updated", value: (r) => when(r.update_ts) },
					],
				}),
				pager({ page, hasNext: rows.length > PAGE_SIZE, label: "Key-value pages", onPage: (p) => { page = p; load(); } }),
			);
		});
	const form = h(
		"form",
		{ class: "inline", role: "search", onsubmit: (e) => { e.preventDefault(); page = 0; load(); } },
		h("label", { for: "kv-prefix" }, "Key prefix"),
		Object.assign(prefix, { id: "kv-prefix" }),
		h("button", { type: "submit" }, "Show"),
	);
	fill(panel, h("h2", {}, "Key-value store"), h("p", { class: "muted" }, "Keys are shown as text when they are text, else as hex. Key 0x03 (the actor's inspector token) is not shown."), form, list);
	load();
}

/** A schedule's arguments (CBOR), shown as JSON when they decode. */
function args(value) {
	const bytes = blob(value);
	try {
		return compact(cbor.decode(bytes));
	} catch {
		return bytesText(bytes);
	}
}

export function schedules({ actorId, panel }) {
	const list = h("div", {});
	const history = h("div", {});
	let page = 0;
	const load = () =>
		act(null, list, async () => {
			const { rows } = await execute(
				actorId,
				"SELECT kind, id, action, args, run_at, cron, timezone, interval_ms, created_at FROM _tern_schedules ORDER BY run_at, kind, id LIMIT ?1 OFFSET ?2",
				[PAGE_SIZE + 1, page * PAGE_SIZE],
			);
			fill(
				list,
				table({
					caption: "Schedules, next due first",
					empty: page ? "No more schedules." : "No schedules.",
					rows: rows.slice(0, PAGE_SIZE),
					columns: [
						{ label: "Next run", value: (r) => when(r.run_at) },
						{ label: "Kind", value: (r) => r.kind },
						{ label: "Id or name", value: (r) => h("code", {}, r.id) },
						{ label: "Action", value: (r) => r.action },
						{ label: "Arguments", value: (r) => h("code", {}, args(r.args)) },
						{ label: "Repeats", value: (r) => (r.cron ? `${r.cron} (${r.timezone})` : r.interval_ms ? `every ${r.interval_ms / 1000} s` : "once") },
						{ label: "Created", value: (r) => when(r.created_at) },
					],
				}),
				pager({ page, hasNext: rows.length > PAGE_SIZE, label: "Schedule pages", onPage: (p) => { page = p; load(); } }),
			);
		});
	const loadHistory = () =>
		act(null, history, async () => {
			const { rows } = await execute(
				actorId,
				"SELECT name, action, scheduled_at, fired_at, finished_at, result, error FROM _tern_cron_history ORDER BY seq DESC LIMIT 20",
			);
			fill(
				history,
				table({
					caption: "Recent fires of recurring jobs (newest first, last 20)",
					empty: "No recurring job has fired yet.",
					rows,
					columns: [
						{ label: "Job", value: (r) => r.name },
						{ label: "Action", value: (r) => r.action },
						{ label: "Due", value: (r) => when(r.scheduled_at) },
						{ label: "Fired", value: (r) => when(r.fired_at) },
						{ label: "Took", class: "num", value: (r) => `${r.finished_at - r.fired_at} ms` },
						{ label: "Result", value: (r) => h("span", { class: r.error ? "error-text" : "" }, r.result, r.error ? `: ${r.error}` : "") },
					],
				}),
			);
		});
	fill(panel, h("h2", {}, "Schedules"), list, h("h3", {}, "Recurring jobs' history"), history);
	load();
	loadHistory();
}
