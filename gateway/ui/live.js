// Calling an action (through the inspector: its output, or its error's `group.code`) and the actor's live event
// stream: a client connection (`/connect`, RivetKit's protocol in its json encoding) subscribed to the events the
// user names, receiving exactly what subscribers receive. The connection outlives switching tabs and closes when
// the page leaves the actor.

import { ApiError, get, inspector, InputError, request } from "./api.js";
import { act, errorBox, field, fill, h, parseJson, pretty, submitForm } from "./dom.js";

/** Events kept on screen; older ones are dropped (and counted). */
const KEEP_EVENTS = 200;

/** The open stream, if any: `{actorId, socket, events, dropped, names, status, connectionId, listeners}`. */
let stream = null;

export function disconnect() {
	if (!stream) return;
	const { socket } = stream;
	stream = null;
	socket.close(1000, "closed by the inspector");
}

/** A subprotocol value must be an HTTP token: percent-encode what encodeURIComponent leaves that is not. */
function paramsProtocol(params) {
	const encoded = encodeURIComponent(JSON.stringify(params)).replace(/[()'!*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
	return `rivet_conn_params.${encoded}`;
}

function connect(actorId, names, params) {
	disconnect();
	const scheme = location.protocol === "https:" ? "wss:" : "ws:";
	const url = `${scheme}//${location.host}/gateway/${encodeURIComponent(actorId)}/connect`;
	const protocols = ["rivet", "rivet_encoding.json"];
	if (params !== undefined) protocols.push(paramsProtocol(params));
	const socket = new WebSocket(url, protocols);
	const current = { actorId, socket, names, events: [], dropped: 0, status: "Connecting…", connectionId: null, error: null, listeners: new Set() };
	stream = current;
	const changed = () => {
		for (const listener of current.listeners) listener();
	};
	socket.addEventListener("open", () => {
		current.status = "Open, waiting for the actor";
		changed();
	});
	socket.addEventListener("message", (event) => {
		let message;
		try {
			message = JSON.parse(event.data);
		} catch {
			current.error = new Error("The node sent a message that is not JSON");
			changed();
			return;
		}
		const { tag, val } = message.body ?? {};
		if (tag === "Init") {
			current.connectionId = val.connectionId;
			for (const eventName of names) {
				socket.send(JSON.stringify({ body: { tag: "SubscriptionRequest", val: { eventName, subscribe: true } } }));
			}
			current.status = "Connected";
		} else if (tag === "Event") {
			current.events.unshift({ at: new Date(), name: val.name, args: val.args });
			if (current.events.length > KEEP_EVENTS) {
				current.dropped += current.events.length - KEEP_EVENTS;
				current.events.length = KEEP_EVENTS;
			}
		} else if (tag === "Error") {
			current.error = { group: val.group, code: val.code, message: val.message, metadata: val.metadata };
		}
		changed();
	});
	socket.addEventListener("close", (event) => {
		current.status = `Closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`;
		current.closed = true;
		changed();
	});
	socket.addEventListener("error", () => {
		current.status = "The connection failed";
		changed();
	});
	return current;
}

export function render({ actorId, panel, cleanups }) {
	const callSection = h("section", { class: "card", "aria-labelledby": "call-heading" }, h("h2", { id: "call-heading" }, "Call an action"));
	const eventSection = h("section", { class: "card", "aria-labelledby": "events-heading" }, h("h2", { id: "events-heading" }, "Live events"));
	fill(panel, h("div", { class: "two" }, callSection, eventSection));
	renderCall(actorId, callSection);
	cleanups.push(renderEvents(actorId, eventSection));
}

function renderCall(actorId, section) {
	const action = h("select", { name: "action", required: true });
	const args = h("textarea", { name: "args", class: "code", rows: "3", spellcheck: "false" }, "[]");
	const result = h("div", { class: "result", "aria-live": "polite" });
	const button = h("button", { type: "submit", class: "primary" }, "Call");
	const form = submitForm(
		{},
		{
			button,
			errors: result,
			task: async () => {
				const parsed = parseJson(args.value, "The arguments");
				if (!Array.isArray(parsed)) throw new InputError("The arguments must be a JSON array, one item per argument: [5]");
				const started = performance.now();
				const { output } = await request("POST", inspector(actorId, `action/${encodeURIComponent(action.value)}`), { body: { args: parsed } });
				const took = (performance.now() - started).toFixed(0);
				fill(result, h("p", { class: "ok" }, `${action.value} returned in ${took} ms:`), h("pre", { class: "code output" }, pretty(output ?? null)));
			},
		},
		field("Action", action),
		field("Arguments (a JSON array)", args, "Positional arguments, e.g. [5] or [\"SELECT 1\"]. Ctrl+Enter calls."),
		h("div", { class: "buttons" }, button),
		result,
	);
	args.addEventListener("keydown", (event) => {
		if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
	});
	section.append(form);
	act(null, result, async () => {
		const { rpcs } = await get(inspector(actorId, "rpcs"));
		fill(action, h("option", { value: "" }, "choose an action"), rpcs.map((name) => h("option", { value: name }, name)));
		if (!rpcs.length) fill(result, h("p", { class: "muted" }, "This actor has no actions."));
	});
}

function renderEvents(actorId, section) {
	const names = h("input", { name: "events", spellcheck: "false", autocomplete: "off", placeholder: "newCount, message" });
	const params = h("textarea", { name: "params", class: "code", rows: "2", spellcheck: "false", placeholder: "{\"name\": \"ada\"}" });
	const errors = h("div", { class: "errors" });
	const connectButton = h("button", { type: "submit", class: "primary" }, "Connect");
	const disconnectButton = h("button", { type: "button", onclick: () => { disconnect(); show(); } }, "Disconnect");
	const status = h("p", { class: "status", role: "status" });
	const log = h("ol", { class: "events", role: "log", "aria-live": "polite", "aria-label": "Events received" });
	const form = h(
		"form",
		{
			onsubmit: (event) => {
				event.preventDefault();
				fill(errors);
				try {
					const list = names.value.split(",").map((n) => n.trim()).filter(Boolean);
					if (!list.length) throw new InputError("Name at least one event to subscribe to.");
					const connParams = params.value.trim() ? parseJson(params.value, "The connection parameters") : undefined;
					listen(connect(actorId, list, connParams));
				} catch (err) {
					fill(errors, errorBox(err));
				}
			},
		},
		field("Events (comma-separated)", names, "The actor sends an event only to connections subscribed to its name."),
		field("Connection parameters (JSON, optional)", params),
		h("div", { class: "buttons" }, connectButton, disconnectButton),
		errors,
	);
	section.append(form, status, log);

	let listening = null;
	const show = () => {
		const current = stream?.actorId === actorId ? stream : null;
		disconnectButton.disabled = !current || current.closed;
		if (!current) {
			fill(status, "Not connected.");
			fill(log);
			return;
		}
		if (!names.value) names.value = current.names.join(", ");
		fill(
			status,
			current.status,
			current.connectionId ? ` as ${current.connectionId}` : "",
			`; subscribed to ${current.names.join(", ")}.`,
			current.dropped ? ` ${current.dropped} older events dropped from view.` : "",
		);
		fill(errors, current.error ? errorBox(asApiError(current.error)) : null);
		fill(
			log,
			current.events.map((e) =>
				h("li", { dataset: { event: e.name } }, h("time", {}, e.at.toLocaleTimeString()), " ", h("strong", {}, e.name), " ", h("code", {}, JSON.stringify(e.args))),
			),
		);
	};
	const listen = (current) => {
		listening?.();
		current.listeners.add(show);
		listening = () => current.listeners.delete(show);
		show();
	};
	if (stream?.actorId === actorId) listen(stream);
	else show();
	return () => listening?.();
}

/** A connection's `Error` frame, reported like an API error. */
function asApiError(frame) {
	return frame instanceof Error ? frame : new ApiError({ status: null, ...frame });
}
