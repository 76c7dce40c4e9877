// The node's admin and inspector HTTP API, as the `tern` command line uses it: JSON bodies, the admin token (when
// one was given) as `Authorization: Bearer`, and every error as the API's `group.code` and message.

const TOKEN_KEY = "tern.adminToken";

/** The admin token of this browser tab, or null. Kept in sessionStorage only: gone when the tab closes. */
export function token() {
	return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
	sessionStorage.setItem(TOKEN_KEY, value);
}

export function clearToken() {
	sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API (`group`, `code`, `message`, `metadata`), or a request that got no answer. */
export class ApiError extends Error {
	constructor({ status, group = null, code = null, message, metadata = null }) {
		super(message);
		this.status = status;
		this.group = group;
		this.code = code;
		this.metadata = metadata;
	}

	/** `group.code`, or null when the answer carried none (no answer at all, or a bare HTTP status). */
	get qualified() {
		return this.group && this.code ? `${this.group}.${this.code}` : null;
	}

	/** Whether the node refused the admin token (or its absence). */
	get unauthorized() {
		return this.status === 401;
	}
}

/** An error the page itself found in what the user typed, before any request. */
export class InputError extends Error {}

/** `path` with the query parameters of `query` that are not null or undefined. */
export function withQuery(path, query = {}) {
	const params = new URLSearchParams();
	for (const [name, value] of Object.entries(query)) {
		if (value !== null && value !== undefined && value !== "") params.set(name, String(value));
	}
	const text = params.toString();
	return text ? `${path}?${text}` : path;
}

/**
 * One request. `body` is sent as JSON; `tokenOverride` replaces the stored token (signing in). Resolves with the
 * parsed JSON answer (or the Response itself with `raw`), rejects with an ApiError.
 */
export async function request(method, path, { body, query, raw = false, tokenOverride } = {}) {
	const headers = {};
	const bearer = tokenOverride ?? token();
	if (bearer) headers.authorization = `Bearer ${bearer}`;
	const init = { method, headers, cache: "no-store" };
	if (body !== undefined) {
		headers["content-type"] = "application/json";
		init.body = JSON.stringify(body);
	}
	let response;
	try {
		response = await fetch(withQuery(path, query), init);
	} catch (err) {
		throw new ApiError({ status: 0, message: `The node did not answer (${err.message})` });
	}
	if (raw && response.ok) return response;
	const text = await response.text();
	let parsed;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		parsed = undefined;
	}
	if (!response.ok) {
		if (parsed && typeof parsed.group === "string" && typeof parsed.code === "string") {
			throw new ApiError({ status: response.status, ...parsed });
		}
		throw new ApiError({ status: response.status, message: text || response.statusText || "no message" });
	}
	if (parsed === undefined) {
		throw new ApiError({ status: response.status, message: `The answer is not JSON: ${text.slice(0, 200)}` });
	}
	return parsed;
}

export const get = (path, options) => request("GET", path, options);

/** The path of an inspector route of one actor. */
export function inspector(actorId, route) {
	return `/gateway/${encodeURIComponent(actorId)}/inspector/${route}`;
}

/** `GET /cluster/members` (admin): `{members, node}`. */
export function members(options) {
	return get("/cluster/members", options);
}

/** One actor by id (public lookup), or null when there is none. */
export async function actorById(actorId) {
	const { actors } = await get("/actors", { query: { actor_ids: actorId } });
	return actors[0] ?? null;
}

/**
 * Where an actor's database lives (`GET /actors/{id}/replicas`, admin): `{home, replicas}`, each copy `{node,
 * region, position, lagFrames, lagBytes, lagMs, state}` as the actor's home reports it.
 */
export function replicas(actorId) {
	return get(`/actors/${encodeURIComponent(actorId)}/replicas`);
}

/** Runs one SQL statement through the inspector: positional `args` (array) or named `properties` (object). */
export function execute(actorId, sql, params) {
	const body = { sql };
	if (Array.isArray(params)) body.args = params;
	else if (params && typeof params === "object") body.properties = params;
	return request("POST", inspector(actorId, "database/execute"), { body });
}

/**
 * Whether an actor is awake, asleep or destroyed, from its timestamps (as the README describes them). A listing
 * comes from the actors' homes, where an actor with neither a start nor a sleep time has not woken since its
 * node started. A lookup by id or key may be answered from the cluster's directory, which knows no wake or sleep
 * times: there that is "unknown".
 */
export function actorStatus(actor, { listed = true } = {}) {
	if (actor.destroy_ts) return "destroyed";
	if (actor.start_ts && !actor.sleep_ts) return "awake";
	if (actor.sleep_ts || listed) return "asleep";
	return "unknown";
}
