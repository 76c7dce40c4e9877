// The actors: a paged list (newest first) with filters by name, key prefix, region and status, lookups by id or
// by exact key, creating one, and sleep and destroy with a confirmation.
//
// The listing (`GET /actors`, admin) filters by name and returns at most 1000 actors, newest first, without a
// cursor. So a page is read with the smallest limit that covers it, and the other filters (key prefix, region,
// status) apply to what the listing returned; the page says so. A key or id lookup finds any actor.

import { actorStatus, get, replicas, request, withQuery } from "./api.js";
import * as cbor from "./cbor.js";
import { act, confirmAction, errorBox, field, fill, h, pager, parseJson, submitForm, table, toBase64, when } from "./dom.js";

const PAGE_SIZE = 20;
const LISTING_MAX = 1000;

/** The list's address for these filters and page. */
function address(filters, page = 0) {
	return withQuery("#/actors", { ...filters, page: page || null });
}

export function render({ main, params }) {
	const filters = {
		name: params.get("name") ?? "",
		key: params.get("key") ?? "",
		region: params.get("region") ?? "",
		status: params.get("status") ?? "",
		id: params.get("id") ?? "",
	};
	const page = Math.max(0, Number.parseInt(params.get("page") ?? "0", 10) || 0);

	const nameSelect = h("select", { name: "name" }, h("option", { value: "" }, "any name"));
	const regionSelect = h("select", { name: "region" }, h("option", { value: "" }, "any region"));
	const statusSelect = h(
		"select",
		{ name: "status" },
		h("option", { value: "" }, "any status"),
		h("option", { value: "awake" }, "awake"),
		h("option", { value: "asleep" }, "asleep"),
	);
	statusSelect.value = filters.status;
	const keyInput = h("input", { name: "key", type: "search", value: filters.key, spellcheck: "false", autocomplete: "off", placeholder: "e.g. org-1/general" });
	const idInput = h("input", { name: "id", type: "search", value: filters.id, spellcheck: "false", autocomplete: "off" });
	const filterForm = h(
		"form",
		{
			class: "filters",
			role: "search",
			onsubmit: (event) => {
				event.preventDefault();
				const next = {
					name: nameSelect.value,
					key: keyInput.value.trim(),
					region: regionSelect.value,
					status: statusSelect.value,
					id: idInput.value.trim(),
				};
				location.hash = address(next);
			},
		},
		field("Name", nameSelect),
		field("Key prefix", keyInput),
		field("Region", regionSelect),
		field("Status", statusSelect),
		field("Actor id", idInput),
		h("div", { class: "field actions" }, h("button", { type: "submit", class: "primary" }, "Search"), h("a", { href: "#/actors", class: "button" }, "Clear")),
	);

	const errors = h("div", { class: "errors" });
	const results = h("div", { class: "results", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading actors…"));
	const createSection = createForm();
	fill(main, h("h1", {}, "Actors"), filterForm, errors, results, createSection.element);

	let stopped = false;
	const reload = () => load(filters, page, { results, errors, reload, isStopped: () => stopped });

	// The name and region choices come from the node; the chosen ones stay selected.
	(async () => {
		try {
			const [{ names }, { members }] = await Promise.all([get("/actors/names"), get("/cluster/members")]);
			for (const name of Object.keys(names).sort()) {
				nameSelect.append(h("option", { value: name }, name));
				createSection.names.append(h("option", { value: name }, name));
			}
			const regions = [...new Set(members.map((m) => m.region))].sort();
			if (filters.region && !regions.includes(filters.region)) regions.push(filters.region);
			for (const region of regions) {
				regionSelect.append(h("option", { value: region }, region));
				createSection.regions.append(h("option", { value: region }, region));
			}
			nameSelect.value = filters.name;
			regionSelect.value = filters.region;
		} catch (err) {
			fill(errors, errorBox(err));
		}
	})();
	reload();
	return () => {
		stopped = true;
	};
}

/** Finds the actors the filters ask for and shows one page of them. */
async function load(filters, page, { results, errors, reload, isStopped }) {
	let rows;
	let hasNext;
	let note;
	try {
		if (filters.id) {
			const { actors } = await get("/actors", { query: { actor_ids: filters.id } });
			rows = actors.map((a) => ({ ...a, lookedUp: true }));
			hasNext = false;
			note = actors.length ? "The actor with this id." : `No actor has the id ${filters.id}.`;
		} else {
			const local = Boolean(filters.key || filters.region || filters.status);
			// Unfiltered, a page needs the actors up to its end and one more (to know whether another page follows).
			const limit = local ? LISTING_MAX : Math.min(LISTING_MAX, (page + 1) * PAGE_SIZE + 1);
			const listed = get("/actors", { query: { name: filters.name || null, limit } });
			// With a name and a key, the exact key is also looked up: it finds the actor beyond the listing's reach.
			const exact = filters.name && filters.key ? get("/actors", { query: { name: filters.name, key: filters.key } }) : null;
			const [{ actors }, found] = await Promise.all([listed, exact]);
			const matches = actors.filter(
				(a) =>
					(!filters.key || a.key.startsWith(filters.key)) &&
					(!filters.region || a.datacenter === filters.region) &&
					(!filters.status || actorStatus(a) === filters.status),
			);
			for (const actor of found?.actors ?? []) {
				if (!matches.some((a) => a.actor_id === actor.actor_id)) matches.unshift({ ...actor, lookedUp: true });
			}
			rows = matches.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
			hasNext = matches.length > (page + 1) * PAGE_SIZE;
			const capped = actors.length >= limit && limit === LISTING_MAX;
			note = local
				? `${matches.length} matching among the ${actors.length} newest actors listed${capped ? " (the listing returns at most 1000; look an exact key up with a name)" : ""}.`
				: `Newest first${capped && !hasNext ? "; the listing returns at most 1000 actors, look others up by key or id" : ""}.`;
		}
	} catch (err) {
		if (!isStopped()) fill(results, errorBox(err));
		return;
	}
	if (isStopped()) return;
	fill(
		results,
		h("p", { class: "muted" }, note),
		table({
			caption: "Actors",
			empty: "No actor matches.",
			nowrap: true,
			rows,
			rowProps: (a) => ({ dataset: { actorId: a.actor_id, key: a.key } }),
			columns: [
				{ label: "Name", value: (a) => a.name },
				{ label: "Key", value: (a) => h("a", { href: `#/actor/${a.actor_id}` }, a.key === "" ? "(empty key)" : a.key) },
				{ label: "Id", value: (a) => h("code", { class: "id" }, a.actor_id) },
				{ label: "Region", value: (a) => a.datacenter },
				{ label: "Home node", value: (a) => homeCell(a) },
				{ label: "Status", value: (a) => statusBadge(a, { listed: !a.lookedUp }) },
				{ label: "Created", value: (a) => when(a.create_ts) },
				{ label: "Actions", value: (a) => lifecycleButtons(a, errors, reload) },
			],
		}),
		filters.id
			? null
			: pager({
					page,
					hasNext,
					label: "Actor pages",
					onPage: (next) => {
						location.hash = address(filters, next);
					},
				}),
	);
}

/** How many home lookups one page runs at a time. */
const HOME_LOOKUPS = 4;
const homeQueue = [];
let homeRunning = 0;

/** A cell that fills with the actor's home node (`GET /actors/{id}/replicas`), or the error's `group.code`. */
function homeCell(actor) {
	const cell = h("span", { class: "muted" }, "…");
	homeQueue.push(async () => {
		if (!cell.isConnected) return;
		try {
			const set = await replicas(actor.actor_id);
			cell.className = "";
			fill(cell, set.home.node);
		} catch (err) {
			cell.className = "error-text";
			fill(cell, err.qualified ?? "no answer");
			cell.title = err.message;
		}
	});
	// Once the table holding the cell is on the page.
	setTimeout(drainHomes, 0);
	return cell;
}

function drainHomes() {
	while (homeRunning < HOME_LOOKUPS && homeQueue.length) {
		const next = homeQueue.shift();
		homeRunning += 1;
		next().finally(() => {
			homeRunning -= 1;
			drainHomes();
		});
	}
}

/** An actor's status, colored; "unknown" says why. */
export function statusBadge(actor, options) {
	const status = actorStatus(actor, options);
	const why = status === "unknown" ? "Answered from the cluster's directory: only the actor's home knows whether it is awake." : null;
	return h("span", { class: `state state-${status}`, title: why }, status);
}

/** Sleep and destroy buttons for one actor; both ask first. `done` runs after a change. */
export function lifecycleButtons(actor, errors, done) {
	const label = `${actor.name}/${actor.key || "(empty key)"}`;
	const sleep = h("button", { type: "button", "aria-label": `Sleep ${label}` }, "Sleep");
	const destroy = h("button", { type: "button", class: "danger", "aria-label": `Destroy ${label}` }, "Destroy");
	sleep.addEventListener("click", async () => {
		const yes = await confirmAction({
			title: `Put ${label} to sleep?`,
			message: "Its state is saved and its connections are closed (clients reconnect). The next request wakes it.",
			confirm: "Sleep",
			danger: false,
		});
		if (!yes) return;
		await act(sleep, errors, async () => {
			await request("POST", `/actors/${encodeURIComponent(actor.actor_id)}/sleep`, { body: {} });
			await done?.("sleep");
		});
	});
	destroy.addEventListener("click", async () => {
		const yes = await confirmAction({
			title: `Destroy ${label}?`,
			message: `Actor ${actor.actor_id} and its whole database are deleted for good. This cannot be undone.`,
			confirm: "Destroy",
		});
		if (!yes) return;
		await act(destroy, errors, async () => {
			await request("DELETE", `/actors/${encodeURIComponent(actor.actor_id)}`);
			await done?.("destroy");
		});
	});
	return h("span", { class: "row-actions" }, sleep, destroy);
}

/** The form that creates an actor (`POST /actors`: a taken key is `actor.duplicate_key`). */
function createForm() {
	const names = h("select", { name: "name", required: true });
	const regions = h("select", { name: "datacenter" }, h("option", { value: "" }, "the gateway's region"));
	const key = h("input", { name: "key", spellcheck: "false", autocomplete: "off" });
	const input = h("textarea", { name: "input", rows: "3", spellcheck: "false", placeholder: "{}" });
	const errors = h("div", { class: "errors" });
	const button = h("button", { type: "submit", class: "primary" }, "Create");
	const form = submitForm(
		{ class: "grid-form" },
		{
			button,
			errors,
			task: async () => {
				const body = { name: names.value, key: key.value };
				if (regions.value) body.datacenter = regions.value;
				if (input.value.trim()) body.input = toBase64(cbor.encode(parseJson(input.value, "The input")));
				const { actor } = await request("POST", "/actors", { body });
				location.hash = `#/actor/${actor.actor_id}`;
			},
		},
		field("Name", names),
		field("Key", key, "RivetKit's serialized key; empty for the empty key"),
		field("Region", regions),
		field("Input (JSON, optional)", input, "passed to the actor's create-state hook"),
		h("div", { class: "field actions" }, button),
		errors,
	);
	const element = h("details", { class: "card create" }, h("summary", {}, "Create an actor"), form);
	return { element, names, regions };
}
