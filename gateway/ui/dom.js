// Small helpers to build the page: elements, error reports, tables, pagers, confirmations, values.

import { ApiError, InputError } from "./api.js";

/**
 * An element: `h("button", {class: "x", onclick: f, disabled: true}, "text", child, [more])`. Properties starting
 * with `on` are listeners, `class` and `text` are shorthands, `dataset` sets data attributes, other values are
 * attributes (false and null leave them out).
 */
export function h(tag, props = {}, ...children) {
	const el = document.createElement(tag);
	for (const [name, value] of Object.entries(props ?? {})) {
		if (value === null || value === undefined || value === false) continue;
		if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
		else if (name === "class") el.className = value;
		else if (name === "text") el.textContent = value;
		else if (name === "dataset") Object.assign(el.dataset, value);
		else if (name === "value") el.value = value;
		else el.setAttribute(name, value === true ? "" : String(value));
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const child of children) {
		if (child === null || child === undefined || child === false) continue;
		if (Array.isArray(child)) append(el, child);
		else el.append(child instanceof Node ? child : String(child));
	}
}

/** Replaces the contents of `el`. */
export function fill(el, ...children) {
	el.replaceChildren();
	append(el, children);
	return el;
}

let ids = 0;
/** A unique element id (labels and the fields they name). */
export function uid(prefix = "f") {
	ids += 1;
	return `${prefix}-${ids}`;
}

/** A labelled field: `{label, control}` where control is an input, select or textarea; returns the wrapper. */
export function field(label, control, hint) {
	control.id ||= uid();
	const hintEl = hint ? h("span", { class: "hint", id: `${control.id}-hint` }, hint) : null;
	if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
	return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl);
}

/** The report of a failure: the API's `group.code` and message (and metadata), or what the page found wrong. */
export function errorBox(err) {
	if (err instanceof ApiError) {
		// No status: an error frame on a connection; status 0: no answer at all.
		const status = err.status > 0 ? `HTTP ${err.status}` : err.status === 0 ? "no answer" : null;
		return h(
			"div",
			{ class: "error", role: "alert" },
			h("strong", { class: "code" }, err.qualified ?? status ?? "error"),
			" ",
			h("span", { class: "message" }, err.message),
			err.qualified && status ? h("span", { class: "status" }, ` (${status})`) : null,
			err.metadata !== null && err.metadata !== undefined ? h("pre", { class: "metadata" }, pretty(err.metadata)) : null,
			err.unauthorized ? h("p", {}, h("a", { href: "#/signin" }, "Sign in with the admin token")) : null,
		);
	}
	if (err instanceof InputError) return h("div", { class: "error", role: "alert" }, h("strong", {}, "Not sent: "), err.message);
	console.error(err);
	return h("div", { class: "error", role: "alert" }, h("strong", {}, "Page error: "), String(err?.message ?? err));
}

/** Shows `err` in `el` (replacing what was there). */
export function showError(el, err) {
	fill(el, errorBox(err));
}

/** Runs `task` with `button` disabled meanwhile; a failure is shown in `errors` (cleared first) and not rethrown. */
export async function act(button, errors, task) {
	if (errors) fill(errors);
	if (button) button.disabled = true;
	try {
		return await task();
	} catch (err) {
		if (errors) showError(errors, err);
		else throw err;
	} finally {
		if (button) button.disabled = false;
	}
}

/** A form whose submission runs `task` through `act`: `button` disabled meanwhile, a failure shown in `errors`. */
export function submitForm(props, { button, errors, task }, ...children) {
	const onsubmit = (event) => {
		event.preventDefault();
		act(button, errors, task);
	};
	return h("form", { ...props, onsubmit }, ...children);
}

/** JSON, indented. */
export function pretty(value) {
	return JSON.stringify(value, null, 2);
}

/** JSON on one line, shortened to `max` characters. */
export function compact(value, max = 200) {
	const text = JSON.stringify(value);
	if (text === undefined) return "undefined";
	return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A date and time in the browser's locale (`ms` since the epoch), or an em dash. */
export function when(ms) {
	if (ms === null || ms === undefined) return "—";
	const date = new Date(Number(ms));
	return Number.isNaN(date.getTime()) ? String(ms) : date.toLocaleString();
}

/** How long ago `ms` was, roughly. */
export function ago(ms) {
	if (!ms) return "—";
	const seconds = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
	if (seconds < 60) return `${seconds} s ago`;
	if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
	if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
	return `${Math.floor(seconds / 86400)} d ago`;
}

/** A duration in milliseconds, readable. */
export function duration(ms) {
	if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
	if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
	return `${(ms / 1000).toFixed(2)} s`;
}

/** Bytes from base64. */
export function fromBase64(text) {
	const binary = atob(text);
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}

/** Base64 of bytes. */
export function toBase64(bytes) {
	let binary = "";
	for (const b of bytes) binary += String.fromCharCode(b);
	return btoa(binary);
}

export function hex(bytes) {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes as text when they are printable UTF-8, else as hex (`x'…'`, SQLite's blob literal). */
export function bytesText(bytes, max = 120) {
	try {
		const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
		// Control characters other than tab and newlines make it binary.
		if (!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
			return text.length > max ? `${text.slice(0, max)}…` : text;
		}
	} catch {}
	const shown = hex(bytes.slice(0, Math.ceil(max / 2)));
	return `x'${shown}'${bytes.length > max / 2 ? `… (${bytes.length} bytes)` : ""}`;
}

/** A value of a SQL row (JSON compat form: BLOBs are `["$Uint8Array", base64]`, big integers `["$BigInt", "n"]`). */
export function cell(value) {
	if (value === null || value === undefined) return h("span", { class: "null" }, "NULL");
	if (Array.isArray(value) && value.length === 2 && value[0] === "$Uint8Array") {
		return h("code", {}, bytesText(fromBase64(value[1])));
	}
	if (Array.isArray(value) && value.length === 2 && value[0] === "$BigInt") return String(value[1]);
	if (typeof value === "object") return h("code", {}, compact(value));
	return String(value);
}

/**
 * A table: `columns` is `[{label, value: (row) => child, class?}]`. `caption` names it for screen readers. Wrapped
 * so that a wide table scrolls sideways on a narrow screen; `nowrap` keeps each cell on one line.
 */
export function table({ caption, columns, rows, empty = "Nothing here.", rowProps, nowrap = false }) {
	if (!rows.length) return h("p", { class: "muted empty" }, empty);
	return h(
		"div",
		{ class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
		h(
			"table",
			{ class: nowrap ? "nowrap" : null },
			h("caption", { class: caption ? "" : "sr-only" }, caption ?? ""),
			h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
			h(
				"tbody",
				{},
				rows.map((row) => h("tr", rowProps?.(row) ?? {}, columns.map((c) => h("td", { class: c.class }, c.value(row))))),
			),
		),
	);
}

/** A pager: "Previous", "Next" and where the page is. `onPage(page)` is called with the page asked for. */
export function pager({ page, hasNext, onPage, label = "Pages", describe }) {
	return h(
		"nav",
		{ class: "pager", "aria-label": label },
		h("button", { type: "button", disabled: page <= 0, onclick: () => onPage(page - 1) }, "← Previous"),
		h("span", { class: "page", "aria-live": "polite" }, describe ?? `Page ${page + 1}`),
		h("button", { type: "button", disabled: !hasNext, onclick: () => onPage(page + 1) }, "Next →"),
	);
}

/**
 * Asks to confirm a change that cannot be undone, in a modal dialog (Escape or "Cancel" declines). Resolves with
 * true when confirmed.
 */
export function confirmAction({ title, message, confirm = "Confirm", danger = true }) {
	return new Promise((resolve) => {
		const titleId = uid("dialog");
		const yes = h("button", { type: "button", class: danger ? "danger" : "primary" }, confirm);
		const no = h("button", { type: "button" }, "Cancel");
		const dialog = h(
			"dialog",
			{ class: "confirm", "aria-labelledby": titleId },
			h("h2", { id: titleId }, title),
			h("p", {}, message),
			h("div", { class: "buttons" }, no, yes),
		);
		let answered = false;
		const done = (answer) => {
			if (answered) return;
			answered = true;
			dialog.close();
			dialog.remove();
			resolve(answer);
		};
		yes.addEventListener("click", () => done(true));
		no.addEventListener("click", () => done(false));
		dialog.addEventListener("close", () => done(false));
		document.body.append(dialog);
		dialog.showModal();
		no.focus();
	});
}

/**
 * Rebuilds part of the page with `build` while keeping the keyboard focus on the element with the same
 * `data-focus` key, so that live updates do not throw a keyboard user out of a table.
 */
export function keepFocus(container, build) {
	const focused = document.activeElement;
	const key = container.contains(focused) ? focused?.dataset?.focus : undefined;
	build();
	if (key) container.querySelector(`[data-focus="${CSS.escape(key)}"]`)?.focus();
}

/** Parses JSON the user typed; an InputError naming `what` when it does not parse. */
export function parseJson(text, what) {
	try {
		return JSON.parse(text);
	} catch (err) {
		throw new InputError(`${what} is not valid JSON: ${err.message}`);
	}
}
