// One actor: its summary and lifecycle, and a tab per inspector view. State, connections, queue and workflow are
// here; actions and events in live.js, key-value and schedules in storage.js, traces in traces.js, the database
// in database.js. Reading any inspector view wakes the actor, as a request would.

import { actorById, get, inspector, replicas, request } from "./api.js";
import { act, compact, confirmAction, errorBox, field, fill, h, parseJson, pretty, submitForm, table, when } from "./dom.js";
import { lifecycleButtons, statusBadge } from "./actors.js";
import * as database from "./database.js";
import * as live from "./live.js";
import * as storage from "./storage.js";
import * as traces from "./traces.js";

const TABS = [
	["state", "State"],
	["live", "Actions & events"],
	["connections", "Connections"],
	["replicas", "Replicas"],
	["database", "Database"],
	["kv", "Key-value"],
	["queue", "Queue"],
	["schedules", "Schedules"],
	["workflow", "Workflow"],
	["traces", "Traces"],
];

const VIEWS = {
	state: stateView,
	live: live.render,
	connections: connectionsView,
	replicas: replicasView,
	database: database.render,
	kv: storage.kv,
	queue: queueView,
	schedules: storage.schedules,
	workflow: workflowView,
	traces: traces.render,
};

export function render({ main, actorId, tab = "state" }) {
	if (!VIEWS[tab]) tab = "state";
	const summary = h("section", { class: "card summary", "aria-label": "Summary" }, h("p", { class: "muted" }, "Loading the actor…"));
	const errors = h("div", { class: "errors" });
	const panel = h("section", { class: "panel", id: "panel", "aria-labelledby": `tab-${tab}` });
	const tabs = h(
		"nav",
		{ class: "tabs", "aria-label": "Actor views" },
		TABS.map(([id, label]) =>
			h("a", { href: `#/actor/${actorId}/${id}`, id: `tab-${id}`, "aria-current": id === tab ? "page" : null }, label),
		),
	);
	const heading = h("h1", {}, "Actor");
	fill(main, h("p", { class: "crumbs" }, h("a", { href: "#/actors" }, "Actors"), " / ", h("code", {}, actorId)), heading, summary, errors, tabs, panel);

	const ctx = { actorId, panel, stopped: false, cleanups: [] };
	loadSummary(ctx, { heading, summary, errors });
	VIEWS[tab](ctx);
	return (next) => {
		ctx.stopped = true;
		for (const cleanup of ctx.cleanups) cleanup();
		// The live connection stays open while the page stays on this actor.
		if (next?.parts?.[0] !== "actor" || next.parts[1] !== actorId) live.disconnect();
	};
}

async function loadSummary(ctx, { heading, summary, errors }) {
	let actor;
	let listed = false;
	try {
		actor = await actorById(ctx.actorId);
		if (actor && !actor.destroy_ts) {
			// The listing comes from the actor's home, which knows when it woke and slept; a lookup by id may not.
			const { actors } = await get("/actors", { query: { name: actor.name, limit: 1000 } });
			const home = actors.find((a) => a.actor_id === ctx.actorId);
			if (home) [actor, listed] = [home, true];
		}
	} catch (err) {
		fill(summary, errorBox(err));
		return;
	}
	if (!actor) {
		fill(summary, h("p", { role: "alert" }, `No actor has the id ${ctx.actorId}: it was destroyed, or never existed.`));
		return;
	}
	const key = actor.key === "" ? "(empty key)" : actor.key;
	fill(heading, `${actor.name} `, h("span", { class: "key" }, key));
	const extra = h("div", { class: "facts-more" });
	fill(
		summary,
		h(
			"dl",
			{ class: "facts" },
			fact("Id", h("code", {}, actor.actor_id), "wide"),
			fact("Region", actor.datacenter),
			fact("Status", statusBadge(actor, { listed })),
			fact("Created", when(actor.create_ts)),
			actor.destroy_ts ? fact("Destroyed", when(actor.destroy_ts)) : fact(actor.sleep_ts ? "Asleep since" : "Awake since", when(actor.sleep_ts ?? actor.start_ts)),
		),
		extra,
		actor.destroy_ts
			? null
			: h("div", { class: "buttons" }, lifecycleButtons(actor, errors, (what) => {
					if (what === "destroy") location.hash = "#/actors";
					else loadSummary(ctx, { heading, summary, errors });
				})),
	);
	if (actor.destroy_ts) return;
	const [summaryAnswer, copies] = await Promise.allSettled([get(inspector(ctx.actorId, "summary")), replicas(ctx.actorId)]);
	const s = summaryAnswer.value;
	fill(
		extra,
		h(
			"dl",
			{ class: "facts" },
			s ? fact("Actions", s.rpcs.length ? s.rpcs.join(", ") : "none", "wide") : null,
			s ? fact("Connections", s.connections.length) : null,
			s ? fact("Queued messages", s.queueSize) : null,
			s ? fact("Workflow", s.isWorkflowEnabled ? "yes" : "no") : null,
			copies.value ? fact("Home node", copies.value.home.node) : null,
			copies.value ? fact("Replicas", copies.value.replicas.map((r) => `${r.node} (${r.state})`).join(", ") || "none") : null,
		),
		summaryAnswer.reason ? errorBox(summaryAnswer.reason) : null,
		copies.reason ? errorBox(copies.reason) : null,
	);
}

function fact(term, value, wide) {
	return h("div", { class: wide ? "wide" : null }, h("dt", {}, term), h("dd", {}, value));
}

/** The state as JSON: edit and save (`PATCH state`); what does not parse is not sent. */
function stateView({ actorId, panel }) {
	const editor = h("textarea", { class: "code", rows: "14", spellcheck: "false", disabled: true });
	const errors = h("div", { class: "errors" });
	const saved = h("p", { class: "ok", role: "status" });
	const save = h("button", { type: "submit", class: "primary", disabled: true }, "Save state");
	const reload = h("button", { type: "button" }, "Reload");
	const form = submitForm(
		{},
		{
			button: save,
			errors,
			task: async () => {
				fill(saved);
				const state = parseJson(editor.value, "The state");
				await request("PATCH", inspector(actorId, "state"), { body: { state } });
				fill(saved, `Saved at ${new Date().toLocaleTimeString()}.`);
			},
		},
		field("State (JSON)", editor, "Saving replaces the whole state; it must fit the actor's state type."),
		h("div", { class: "buttons" }, save, reload),
		saved,
		errors,
	);
	const load = () =>
		act(reload, errors, async () => {
			fill(saved);
			const { state, isStateEnabled } = await get(inspector(actorId, "state"));
			if (!isStateEnabled) {
				fill(panel, h("h2", {}, "State"), h("p", { class: "muted" }, "This actor keeps no state."));
				return;
			}
			editor.value = pretty(state);
			editor.disabled = false;
			save.disabled = false;
		});
	reload.addEventListener("click", load);
	fill(panel, h("h2", {}, "State"), form);
	load();
}

/** The open connections: id, parameters, connection state, subscriptions. */
function connectionsView({ actorId, panel }) {
	const list = h("div", {});
	const refresh = h("button", { type: "button" }, "Refresh");
	const load = () =>
		act(refresh, list, async () => {
			const { connections } = await get(inspector(actorId, "connections"));
			fill(
				list,
				table({
					caption: "Connections",
					empty: "No open connections.",
					rows: connections,
					columns: [
						{ label: "Id", value: (c) => h("code", {}, c.id) },
						{ label: "Parameters", value: (c) => h("code", {}, compact(c.details?.params)) },
						{ label: "State", value: (c) => h("code", {}, compact(c.details?.state)) },
						{ label: "Subscriptions", class: "num", value: (c) => c.details?.subscriptions ?? 0 },
					],
				}),
			);
		});
	refresh.addEventListener("click", load);
	fill(panel, h("h2", {}, "Connections"), h("div", { class: "buttons" }, refresh), list);
	load();
}

const REPLICAS_EVERY_MS = 2000;

/** The actor's home and replicas with their positions and lag, polled: a failover shows as the home changing. */
function replicasView({ actorId, panel, cleanups }) {
	const status = h("p", { class: "status muted", role: "status" }, "Asking the actor's home…");
	const moves = h("ul", { class: "moves", "aria-live": "polite" });
	const body = h("div", {});
	const errors = h("div", { class: "errors" });
	fill(
		panel,
		h("h2", {}, "Replicas"),
		h("p", { class: "muted" }, "The home runs the actor and ships every commit to its replicas; if the home dies, a replica takes over."),
		status,
		errors,
		body,
		moves,
	);
	let stopped = false;
	let timer = null;
	let home = null;
	const poll = async () => {
		try {
			const set = await replicas(actorId);
			if (stopped) return;
			fill(errors);
			if (home !== null && set.home.node !== home) {
				moves.prepend(h("li", {}, `${new Date().toLocaleTimeString()}: the home moved from ${home} to ${set.home.node}.`));
			}
			home = set.home.node;
			fill(status, `Home ${set.home.node}, ${set.replicas.length} ${set.replicas.length === 1 ? "replica" : "replicas"} · updated ${new Date().toLocaleTimeString()}`);
			fill(
				body,
				table({
					caption: "Copies of the actor's database",
					rows: [set.home, ...set.replicas],
					rowProps: (r) => ({ dataset: { node: r.node, state: r.state } }),
					columns: [
						{ label: "Node", value: (r) => r.node },
						{ label: "Region", value: (r) => r.region ?? "—" },
						{ label: "State", value: (r) => h("span", { class: `state state-${r.state}` }, r.state) },
						{ label: "Position", value: (r) => (r.position ? h("code", {}, r.position) : "—") },
						{ label: "Behind (frames)", class: "num", value: (r) => r.lagFrames ?? "—" },
						{ label: "Behind (bytes)", class: "num", value: (r) => r.lagBytes ?? "—" },
						{ label: "Lag", class: "num", value: (r) => (r.lagMs === null || r.lagMs === undefined ? "—" : `${r.lagMs} ms`) },
					],
				}),
			);
		} catch (err) {
			if (!stopped) fill(errors, errorBox(err));
		}
		if (!stopped) timer = setTimeout(poll, REPLICAS_EVERY_MS);
	};
	cleanups.push(() => {
		stopped = true;
		clearTimeout(timer);
	});
	poll();
}

const QUEUE_LIMITS = [25, 100, 1000];

/** The queue: the oldest messages (the route pages by a limit), sending one, emptying it. */
function queueView({ actorId, panel }) {
	const list = h("div", {});
	const errors = h("div", { class: "errors" });
	const limit = h("select", {}, QUEUE_LIMITS.map((n) => h("option", { value: String(n) }, `${n} oldest`)));
	const refresh = h("button", { type: "button" }, "Refresh");
	const clear = h("button", { type: "button", class: "danger" }, "Empty the queue");
	const load = () =>
		act(refresh, list, async () => {
			const q = await get(inspector(actorId, "queue"), { query: { limit: limit.value } });
			fill(
				list,
				h("p", {}, `${q.size} of at most ${q.maxSize} messages`, q.truncated ? `; showing the ${q.messages.length} oldest` : "", "."),
				table({
					caption: "Queued messages",
					empty: "The queue is empty.",
					rows: q.messages,
					columns: [
						{ label: "Id", class: "num", value: (m) => m.id },
						{ label: "Queue", value: (m) => m.name },
						{ label: "Sent", value: (m) => when(m.createdAtMs) },
					],
				}),
			);
		});
	limit.addEventListener("change", load);
	refresh.addEventListener("click", load);
	clear.addEventListener("click", async () => {
		const yes = await confirmAction({ title: "Empty the queue?", message: "Every queued message is deleted.", confirm: "Empty" });
		if (yes) act(clear, errors, async () => {
			await request("DELETE", inspector(actorId, "queue"));
			await load();
		});
	});
	const name = h("input", { required: true, spellcheck: "false" });
	const body = h("textarea", { class: "code", rows: "3", spellcheck: "false" }, "null");
	const send = h("button", { type: "submit" }, "Send");
	const sendForm = submitForm(
		{ class: "grid-form" },
		{
			button: send,
			errors,
			task: async () => {
				const value = parseJson(body.value, "The body");
				await request("POST", inspector(actorId, "queue"), { body: { name: name.value, body: value } });
				await load();
			},
		},
		field("Queue name", name),
		field("Body (JSON)", body),
		h("div", { class: "field actions" }, send),
	);
	fill(
		panel,
		h("h2", {}, "Queue"),
		h("div", { class: "buttons" }, field("Show", limit), refresh, clear),
		list,
		h("h3", {}, "Send a message"),
		sendForm,
		errors,
	);
	load();
}

/** The workflow's history as a timeline, with replay from any entry. */
function workflowView({ actorId, panel }) {
	const body = h("div", {});
	const errors = h("div", { class: "errors" });
	const show = ({ history, isWorkflowEnabled }) => {
		if (!isWorkflowEnabled) {
			fill(body, h("p", { class: "muted" }, "This actor has no workflow."));
			return;
		}
		const replay = async (entry) => {
			const yes = await confirmAction({
				title: entry ? `Replay from ${entry.key}?` : "Replay the whole workflow?",
				message: entry
					? "This entry and every later one are forgotten and run again."
					: "Every entry is forgotten and the workflow runs again from the start.",
				confirm: "Replay",
			});
			if (!yes) return;
			await act(null, errors, async () => {
				show(await request("POST", inspector(actorId, "workflow/replay"), { body: { entryId: entry ? entry.id : null } }));
			});
		};
		const first = history[0]?.finishedAtMs;
		fill(
			body,
			history.length ? h("p", { class: "muted" }, `Started ${when(first)}; each entry's time is when it finished, from the first.`) : null,
			history.length
				? h(
						"ol",
						{ class: "timeline" },
						history.map((e) =>
							h(
								"li",
								{ class: e.error ? "failed" : "done" },
								h("span", { class: "when", title: when(e.finishedAtMs) }, `+${((e.finishedAtMs - first) / 1000).toFixed(3)} s`),
								h("span", { class: "entry" }, h("strong", {}, e.key), h("span", { class: "badge" }, e.kind)),
								e.error ? h("span", { class: "error-text" }, e.error) : h("code", { class: "value" }, compact(e.output ?? null)),
								h("button", { type: "button", class: "small", onclick: () => replay(e), "aria-label": `Replay from ${e.key}` }, "Replay from here"),
							),
						),
					)
				: h("p", { class: "muted" }, "No entry recorded yet."),
			h("button", { type: "button", class: "danger", onclick: () => replay(null) }, "Replay from the start"),
		);
	};
	fill(panel, h("h2", {}, "Workflow history"), errors, body);
	act(null, errors, async () => show(await get(inspector(actorId, "workflow-history"))));
}
