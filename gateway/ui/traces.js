// Traces as waterfalls: the actor's recent spans (OTLP/JSON from the inspector), grouped by trace, newest trace
// first. Each trace is a row whose bar is its duration to the scale of the page's longest; opened, its spans are
// bars whose offset and length are to the trace's own scale.

import { get, inspector } from "./api.js";
import { act, duration, fill, h, pager } from "./dom.js";

const TRACES_PER_PAGE = 10;
const LIMITS = [200, 1000];

/** The spans of an OTLP/JSON export request, with times in milliseconds. */
function spans(otlp) {
	const out = [];
	for (const resource of otlp.resourceSpans ?? []) {
		for (const scope of resource.scopeSpans ?? []) {
			for (const s of scope.spans ?? []) {
				out.push({
					...s,
					start: Number(BigInt(s.startTimeUnixNano) / 1000n) / 1000,
					end: Number(BigInt(s.endTimeUnixNano) / 1000n) / 1000,
				});
			}
		}
	}
	return out;
}

/** Spans grouped by trace, each trace's spans in tree order (a parent before its children) with their depth. */
function traces(all) {
	const byTrace = new Map();
	for (const span of all) {
		if (!byTrace.has(span.traceId)) byTrace.set(span.traceId, []);
		byTrace.get(span.traceId).push(span);
	}
	const out = [];
	for (const [traceId, list] of byTrace) {
		const ids = new Set(list.map((s) => s.spanId));
		const children = new Map();
		for (const s of list) {
			const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : null;
			if (!children.has(parent)) children.set(parent, []);
			children.get(parent).push(s);
		}
		const ordered = [];
		const walk = (parent, depth) => {
			for (const s of (children.get(parent) ?? []).sort((a, b) => a.start - b.start)) {
				ordered.push({ span: s, depth });
				walk(s.spanId, depth + 1);
			}
		};
		walk(null, 0);
		const start = Math.min(...list.map((s) => s.start));
		const end = Math.max(...list.map((s) => s.end));
		out.push({ traceId, spans: ordered, start, end, root: ordered[0].span });
	}
	return out.sort((a, b) => b.start - a.start);
}

const ERROR = 2;

/** A span's details: when it started within its trace, its error, its attributes. */
function spanFacts(span, trace) {
	const attributes = (span.attributes ?? []).map((a) => `${a.key}=${Object.values(a.value ?? {})[0]}`);
	return h(
		"dl",
		{ class: "facts" },
		h("div", {}, h("dt", {}, "Started"), h("dd", {}, `+${duration(span.start - trace.start)}`)),
		span.status?.message ? h("div", {}, h("dt", {}, "Error"), h("dd", { class: "error-text" }, span.status.message)) : null,
		attributes.length ? h("div", { class: "wide" }, h("dt", {}, "Attributes"), h("dd", {}, h("code", {}, attributes.join(" ")))) : null,
		h("div", {}, h("dt", {}, "Span"), h("dd", {}, h("code", {}, span.spanId))),
	);
}

/** A bar in a track: `from` and `length` are fractions of the track. */
function bar(from, length, failed) {
	const el = h("span", { class: `bar${failed ? " failed" : ""}` });
	el.style.left = `${from * 100}%`;
	el.style.width = `${Math.max(length * 100, 0.3)}%`;
	return el;
}

/** One trace: a summary row whose bar is its duration to the scale of the page's longest trace; opened, the
 * waterfall of its spans to the trace's own scale. */
function traceRow(trace, longest) {
	const total = Math.max(trace.end - trace.start, 0.001);
	const failed = trace.spans.some(({ span }) => span.status?.code === ERROR);
	const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
		const tick = h("span", { class: "tick" }, duration(total * f));
		tick.style.left = `${f * 100}%`;
		return tick;
	});
	return h(
		"li",
		{ class: "trace", dataset: { trace: trace.traceId } },
		h(
			"details",
			{},
			h(
				"summary",
				{},
				h("span", { class: `name${failed ? " error-text" : ""}` }, trace.root.name),
				h("span", { class: "muted when" }, new Date(trace.start).toLocaleTimeString()),
				h("span", { class: "muted count" }, `${trace.spans.length} ${trace.spans.length === 1 ? "span" : "spans"}`),
				h("span", { class: "track" }, bar(0, total / longest, failed)),
				h("span", { class: "took" }, duration(total)),
			),
			h(
				"div",
				{ class: "waterfall" },
				h("div", { class: "row scale", "aria-hidden": "true" }, h("span", { class: "name" }), h("span", { class: "track" }, ticks), h("span", {})),
				h(
					"ol",
					{ class: "spans", "aria-label": `Spans of ${trace.root.name}` },
					trace.spans.map(({ span, depth }) => {
						const name = h("span", { class: "name" }, span.name);
						name.style.paddingLeft = `${depth * 0.9}em`;
						return h(
							"li",
							{ dataset: { span: span.name } },
							h(
								"details",
								{},
								h(
									"summary",
									{ class: "row" },
									name,
									h("span", { class: "track" }, bar((span.start - trace.start) / total, (span.end - span.start) / total, span.status?.code === ERROR)),
									h("span", { class: "took" }, duration(span.end - span.start)),
								),
								spanFacts(span, trace),
							),
						);
					}),
				),
			),
		),
	);
}

export function render({ actorId, panel }) {
	const limit = h("select", {}, LIMITS.map((n) => h("option", { value: String(n) }, `last ${n} spans`)));
	limit.id = "trace-limit";
	const refresh = h("button", { type: "button" }, "Refresh");
	const body = h("div", {});
	let all = [];
	let clamped = false;
	let page = 0;
	const show = () => {
		const shown = all.slice(page * TRACES_PER_PAGE, (page + 1) * TRACES_PER_PAGE);
		fill(
			body,
			h("p", { class: "muted" }, `${all.length} traces in the spans read; open one for its waterfall`, clamped ? " (more spans were kept than read; raise the limit)" : "", "."),
			shown.length
				? h("ol", { class: "traces", "aria-label": "Traces, newest first" }, shown.map((t) => traceRow(t, Math.max(...shown.map((x) => x.end - x.start), 0.001))))
				: h("p", { class: "muted" }, "No spans recorded yet."),
			pager({ page, hasNext: all.length > (page + 1) * TRACES_PER_PAGE, label: "Trace pages", onPage: (p) => { page = p; show(); } }),
		);
	};
	const load = () =>
		act(refresh, body, async () => {
			const answer = await get(inspector(actorId, "traces"), { query: { limit: limit.value } });
			all = traces(spans(answer.otlp));
			clamped = answer.clamped;
			page = 0;
			show();
		});
	limit.addEventListener("change", load);
	refresh.addEventListener("click", load);
	fill(panel, h("h2", {}, "Traces"), h("div", { class: "buttons" }, h("label", { for: limit.id }, "Read"), limit, refresh), body);
	load();
}
