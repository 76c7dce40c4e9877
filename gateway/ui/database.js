// The actor's database: its tables and views with their schema, a paged table browser, a SQL console with
// parameters (errors as SQLite reports them), the statements of this browser session, and export of the file.

import { execute, get, inspector, InputError, request } from "./api.js";
import { act, cell, errorBox, field, fill, h, pager, parseJson, table } from "./dom.js";

const ROWS_PER_PAGE = 50;
const HISTORY_KEPT = 50;

function historyKey(actorId) {
	return `tern.sqlHistory.${actorId}`;
}

function history(actorId) {
	try {
		return JSON.parse(sessionStorage.getItem(historyKey(actorId)) ?? "[]");
	} catch {
		return [];
	}
}

function remember(actorId, entry) {
	const list = [entry, ...history(actorId)].slice(0, HISTORY_KEPT);
	sessionStorage.setItem(historyKey(actorId), JSON.stringify(list));
}

/** Rows (objects) as a table whose columns are every key, in the order they first appear. */
function rowsTable(rows, caption, columns) {
	const names = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
	return table({ caption, rows, empty: "No rows.", columns: names.map((name) => ({ label: name, value: (r) => cell(r[name]) })) });
}

export function render({ actorId, panel }) {
	const tables = h("div", { class: "db-tables" });
	const browser = h("div", { class: "db-browser" });
	const errors = h("div", { class: "errors" });
	const exportButton = h("button", { type: "button" }, "Export the database file");
	exportButton.addEventListener("click", () =>
		act(exportButton, errors, async () => {
			const response = await request("GET", inspector(actorId, "database/export"), { raw: true });
			const url = URL.createObjectURL(await response.blob());
			const link = h("a", { href: url, download: `${actorId}.db` });
			document.body.append(link);
			link.click();
			link.remove();
			setTimeout(() => URL.revokeObjectURL(url), 10000);
		}),
	);

	let selected = null;
	const loadTables = () =>
		act(null, tables, async () => {
			const { schema } = await get(inspector(actorId, "database/schema"));
			fill(
				tables,
				schema.tables.length
					? h(
							"ul",
							{ class: "table-list", "aria-label": "Tables and views" },
							schema.tables.map((t) =>
								h(
									"li",
									{ dataset: { table: t.table.name } },
									h(
										"button",
										{ type: "button", class: "link", "aria-pressed": selected === t.table.name ? "true" : "false", onclick: () => browse(t, 0) },
										t.table.name,
									),
									h("span", { class: "muted" }, ` ${t.table.type} · ${t.records} rows`),
								),
							),
						)
					: h("p", { class: "muted" }, "No tables yet."),
			);
			if (selected) {
				const still = schema.tables.find((t) => t.table.name === selected);
				if (still) browse(still, 0);
				else fill(browser);
			}
		});

	const browse = (t, page) => {
		selected = t.table.name;
		for (const button of tables.querySelectorAll("button[aria-pressed]")) {
			button.setAttribute("aria-pressed", button.textContent === selected ? "true" : "false");
		}
		const names = t.columns.map((c) => c.name);
		const rowsBox = h("div", {}, h("p", { class: "muted" }, "Loading rows…"));
		fill(
			browser,
			h("h3", {}, `${t.table.type === "view" ? "View" : "Table"} ${t.table.name}`),
			table({
				caption: `Columns of ${t.table.name}`,
				rows: t.columns,
				columns: [
					{ label: "Column", value: (c) => c.name },
					{ label: "Type", value: (c) => c.type || "—" },
					{ label: "Not null", value: (c) => (c.notnull ? "yes" : "") },
					{ label: "Default", value: (c) => cell(c.dflt_value) },
					{ label: "Primary key", value: (c) => (c.pk ? `#${c.pk}` : "") },
				],
			}),
			t.foreignKeys.length
				? table({
						caption: "Foreign keys",
						rows: t.foreignKeys,
						columns: [
							{ label: "Column", value: (k) => k.from },
							{ label: "References", value: (k) => `${k.table}(${k.to ?? "primary key"})` },
							{ label: "On delete", value: (k) => k.on_delete },
						],
					})
				: null,
			rowsBox,
		);
		act(null, rowsBox, async () => {
			const { rows } = await get(inspector(actorId, "database/rows"), { query: { table: t.table.name, limit: ROWS_PER_PAGE, offset: page * ROWS_PER_PAGE } });
			const first = page * ROWS_PER_PAGE;
			fill(
				rowsBox,
				rowsTable(rows, `Rows of ${t.table.name}`, names),
				pager({
					page,
					hasNext: first + rows.length < t.records,
					label: `Pages of ${t.table.name}`,
					describe: rows.length ? `Rows ${first + 1}–${first + rows.length} of ${t.records}` : `No rows here (${t.records} in all)`,
					onPage: (p) => browse(t, p),
				}),
			);
		});
	};

	const sql = sqlConsole(actorId, loadTables);
	fill(
		panel,
		h("div", { class: "buttons spread" }, h("h2", {}, "Database"), exportButton),
		errors,
		h(
			"div",
			{ class: "db" },
			h(
				"aside",
				{ "aria-label": "Tables and statements" },
				h("h3", { id: "db-tables-h" }, "Tables and views"),
				tables,
				h("h3", {}, "This session's statements"),
				sql.history,
			),
			h("div", { class: "db-main" }, sql.element, h("section", { "aria-label": "Table browser" }, browser)),
		),
	);
	loadTables();
}

function sqlConsole(actorId, afterRun) {
	const sql = h("textarea", { name: "sql", class: "code", rows: "4", spellcheck: "false", required: true });
	const params = h("input", { name: "params", class: "code", spellcheck: "false", autocomplete: "off", placeholder: "[1] or {\"id\": 1}" });
	const result = h("div", { class: "result", "aria-live": "polite" });
	const past = h("ol", { class: "history" });
	const run = h("button", { type: "submit", class: "primary" }, "Run");
	const showHistory = () =>
		fill(
			past,
			history(actorId).map((entry) =>
				h(
					"li",
					{},
					h("button", {
						type: "button",
						class: "link",
						title: entry.sql,
						onclick: () => {
							sql.value = entry.sql;
							params.value = entry.params ?? "";
							sql.focus();
						},
					}, entry.sql.length > 80 ? `${entry.sql.slice(0, 80)}…` : entry.sql),
					h("span", { class: entry.ok ? "muted" : "error-text" }, ` ${new Date(entry.at).toLocaleTimeString()} · ${entry.outcome}`),
				),
			),
		);
	const form = h(
		"form",
		{
			onsubmit: (event) => {
				event.preventDefault();
				act(run, result, async () => {
					const text = params.value.trim();
					const values = text ? parseJson(text, "The parameters") : undefined;
					if (values !== undefined && (values === null || typeof values !== "object")) {
						throw new InputError("The parameters must be a JSON array (?1, ?2…) or an object (:name).");
					}
					const entry = { sql: sql.value, params: text, at: Date.now() };
					const started = performance.now();
					try {
						const { rows } = await execute(actorId, sql.value, values);
						const took = (performance.now() - started).toFixed(0);
						remember(actorId, { ...entry, ok: true, outcome: `${rows.length} ${rows.length === 1 ? "row" : "rows"}` });
						fill(result, h("p", { class: "ok" }, `${rows.length} ${rows.length === 1 ? "row" : "rows"} in ${took} ms.`), rowsTable(rows, "Result"));
					} catch (err) {
						remember(actorId, { ...entry, ok: false, outcome: err.qualified ?? "failed" });
						fill(result, errorBox(err));
					}
					showHistory();
					afterRun();
				});
			},
		},
		field("SQL", sql, "One statement. Ctrl+Enter runs it. The runtime's _tern_* tables may be read, not changed."),
		field("Parameters (JSON, optional)", params),
		h("div", { class: "buttons" }, run),
	);
	sql.addEventListener("keydown", (event) => {
		if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
	});
	showHistory();
	const element = h("section", { class: "card", "aria-labelledby": "sql-h" }, h("h3", { id: "sql-h" }, "SQL console"), form, result);
	return { element, history: past };
}
