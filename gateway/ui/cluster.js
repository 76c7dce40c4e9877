// The cluster: its regions and their nodes as the node asked sees them (state, load, build), polled every two
// seconds, and where actors live (the newest actors the listing returns, counted by region, every ten seconds).

import { get, members } from "./api.js";
import { ago, errorBox, fill, h, keepFocus, table, when } from "./dom.js";

const MEMBERS_EVERY_MS = 2000;
const ACTORS_EVERY_MS = 10000;
/** The listing's largest page: the counts cover at most this many actors. */
const LISTING_MAX = 1000;

export function render({ main }) {
	const status = h("p", { class: "status muted", role: "status" }, "Asking the node for its members…");
	const build = h("p", { class: "build muted" });
	const regions = h("div", { class: "regions" });
	const nodes = h("div", {});
	const membersErrors = h("div", { class: "errors" });
	const actorsErrors = h("div", { class: "errors" });
	const placementNote = h("p", { class: "muted" });
	fill(
		main,
		h("h1", {}, "Cluster"),
		status,
		membersErrors,
		h("section", { "aria-labelledby": "regions-h" }, h("h2", { id: "regions-h" }, "Regions"), actorsErrors, regions, placementNote),
		h("section", { "aria-labelledby": "nodes-h" }, h("h2", { id: "nodes-h" }, "Nodes"), nodes, build),
	);

	let stopped = false;
	let seen = null;
	let actors = null;
	const timers = [];
	const every = (ms, task) => {
		const run = async () => {
			if (stopped) return;
			await task();
			if (!stopped) timers.push(setTimeout(run, ms));
		};
		run();
	};
	const show = () => {
		if (!seen) return;
		showMembers(seen, { status, build, nodes });
		keepFocus(regions, () => fill(regions, regionCards(seen.members, actors)));
		fill(placementNote, actors === null ? "" : actorsNote(actors));
	};

	every(MEMBERS_EVERY_MS, async () => {
		try {
			const answer = await members();
			if (stopped) return;
			fill(membersErrors);
			seen = answer;
			show();
		} catch (err) {
			if (!stopped) fill(membersErrors, errorBox(err));
		}
	});
	every(ACTORS_EVERY_MS, async () => {
		try {
			const answer = await get("/actors", { query: { limit: LISTING_MAX } });
			if (stopped) return;
			fill(actorsErrors);
			actors = answer.actors;
			show();
		} catch (err) {
			if (!stopped) fill(actorsErrors, errorBox(err));
		}
	});

	return () => {
		stopped = true;
		for (const timer of timers) clearTimeout(timer);
	};
}

const STATES = ["alive", "suspect", "down"];

function byRegionThenId(a, b) {
	return a.region.localeCompare(b.region) || a.id.localeCompare(b.id);
}

function showMembers({ members: list, node }, { status, build, nodes }) {
	const counts = STATES.map((s) => [s, list.filter((m) => m.state === s).length]).filter(([, n]) => n > 0);
	const regionCount = new Set(list.map((m) => m.region)).size;
	fill(
		status,
		`${list.length} ${list.length === 1 ? "node" : "nodes"} in ${regionCount} ${regionCount === 1 ? "region" : "regions"}: `,
		counts.map(([s, n]) => `${n} ${s}`).join(", "),
		` · updated ${new Date().toLocaleTimeString()}`,
	);
	const local = list.find((m) => m.local);
	fill(
		build,
		node
			? `${local ? local.id : "This node"} runs tern ${node.release}, inter-node protocol ${node.protocols.join(", ")}. ` +
					"Nodes do not gossip their builds: open another node's inspector through its gateway to see its build."
			: "",
	);
	keepFocus(nodes, () =>
		fill(
			nodes,
			table({
				caption: "Nodes, by region",
				nowrap: true,
				rows: [...list].sort(byRegionThenId),
				rowProps: (m) => ({ dataset: { node: m.id, state: m.state } }),
				columns: [
					{ label: "Region", value: (m) => m.region },
					{ label: "Node", value: (m) => h("span", {}, m.id, m.local ? h("span", { class: "badge" }, "this node") : null) },
					{ label: "Zone", value: (m) => m.zone ?? "—" },
					{ label: "State", value: (m) => h("span", { class: `state state-${m.state}` }, m.state) },
					{ label: "Since", value: (m) => h("span", { title: when(m.since) }, ago(m.since)) },
					{ label: "Liveness epoch", class: "num", value: (m) => m.livenessEpoch ?? "—" },
					{ label: "Awake actors", class: "num", value: (m) => m.load?.awakeActors ?? "—" },
					{ label: "Open databases", class: "num", value: (m) => m.load?.openDatabases ?? "—" },
					{ label: "Version", value: (m) => (m.local && node ? node.release : h("span", { class: "muted", title: "not gossiped" }, "—")) },
					{
						label: "Gateway",
						value: (m) => (m.local ? m.gatewayUrl : h("a", { href: `${m.gatewayUrl}/ui/`, dataset: { focus: `gw-${m.id}` } }, m.gatewayUrl)),
					},
					{ label: "QUIC", value: (m) => m.quicAddr ?? "—" },
				],
			}),
		),
	);
}

/** One card per region: its nodes and their states, their load, and the actors listed in it. */
function regionCards(list, actors) {
	const regions = new Map();
	for (const member of [...list].sort(byRegionThenId)) {
		if (!regions.has(member.region)) regions.set(member.region, []);
		regions.get(member.region).push(member);
	}
	for (const actor of actors ?? []) if (!regions.has(actor.datacenter)) regions.set(actor.datacenter, []);
	return h(
		"ul",
		{ class: "cards" },
		[...regions].map(([region, members]) => {
			const alive = members.filter((m) => m.state === "alive").length;
			const sum = (field) => members.reduce((n, m) => n + (m.load?.[field] ?? 0), 0);
			const here = (actors ?? []).filter((a) => a.datacenter === region);
			return h(
				"li",
				{ class: "card region", dataset: { region } },
				h("h3", {}, region),
				h("p", { class: alive === members.length ? "ok" : "error-text" }, `${alive} of ${members.length} nodes alive`),
				h(
					"ul",
					{ class: "node-states" },
					members.map((m) => h("li", {}, m.id, " ", h("span", { class: `state state-${m.state}` }, m.state))),
				),
				h("p", {}, `${sum("awakeActors")} awake actors · ${sum("openDatabases")} open databases`),
				actors === null
					? null
					: h(
							"p",
							{},
							h("a", { href: `#/actors?region=${encodeURIComponent(region)}`, dataset: { focus: `list-${region}` } }, `${here.length} ${here.length === 1 ? "actor" : "actors"} listed`),
						),
			);
		}),
	);
}

function actorsNote(actors) {
	return actors.length >= LISTING_MAX
		? `Actors counted over the newest ${LISTING_MAX} the listing returns (it returns no more).`
		: "Each actor lives in one region; a new one goes to the region its client asked for, or its gateway's.";
}
