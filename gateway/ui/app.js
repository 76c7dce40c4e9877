// The inspector's shell: signing in (when the node has an admin token), the header, and the views by address:
//   #/cluster                   regions and nodes (cluster.js)
//   #/actors?name&key&region    the actor list (actors.js)
//   #/actor/ID[/TAB]            one actor (actor.js; its database is the tab `database`)

import { ApiError, clearToken, members, setToken, token } from "./api.js";
import { errorBox, field, fill, h } from "./dom.js";
import * as actorView from "./actor.js";
import * as actorsView from "./actors.js";
import * as clusterView from "./cluster.js";

const main = document.getElementById("main");
const whoami = document.getElementById("whoami");

/** The node asked, once the page may use it: `{id, region}` of the local member. */
let node = null;
/** Whether the node answered the admin routes without a token (`tern dev`). */
let open = false;
/** What the current view asked to run when the page leaves it. */
let leave = null;

/** The address after `#`: a path and its query parameters. */
function route() {
	const hash = location.hash.replace(/^#/, "") || "/cluster";
	const [path, query = ""] = hash.split("?");
	return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

function showHeader() {
	const signOut = h("button", { type: "button", class: "link", onclick: signOutNow }, "Sign out");
	const where = node ? `${node.id} (${node.region})` : location.host;
	fill(
		whoami,
		h("span", {}, "Node ", h("strong", {}, where)),
		open ? h("span", { class: "badge" }, "open: no admin token") : token() ? signOut : null,
	);
	const { parts } = route();
	const current = parts[0] === "actor" ? "actors" : parts[0];
	for (const link of document.querySelectorAll("[data-nav]")) {
		if (link.dataset.nav === current) link.setAttribute("aria-current", "page");
		else link.removeAttribute("aria-current");
	}
}

function signOutNow() {
	clearToken();
	node = null;
	location.hash = "#/signin";
	render();
}

/** The sign-in form: the admin token is checked against the node before it is kept for this tab. */
function signIn(reason) {
	leaveView();
	const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
	const errors = h("div", { class: "errors" });
	const button = h("button", { type: "submit", class: "primary" }, "Sign in");
	const form = h(
		"form",
		{
			class: "card signin",
			onsubmit: async (event) => {
				event.preventDefault();
				fill(errors);
				button.disabled = true;
				try {
					const answer = await members({ tokenOverride: input.value.trim() });
					setToken(input.value.trim());
					identify(answer);
					if (route().parts[0] === "signin") location.hash = "#/cluster";
					else render();
				} catch (err) {
					fill(errors, errorBox(err));
					input.focus();
				} finally {
					button.disabled = false;
				}
			},
		},
		h("h1", {}, "Sign in"),
		h("p", {}, "This node requires its admin token. It stays in this browser tab only (sessionStorage) and is sent as ",
			h("code", {}, "Authorization: Bearer"), ", as the tern command line sends it."),
		reason ? errorBox(reason) : null,
		field("Admin token", input),
		button,
		errors,
	);
	fill(main, form);
	fill(whoami, h("span", {}, "Node ", h("strong", {}, location.host)));
	input.focus();
}

function identify(answer) {
	const local = answer.members.find((m) => m.local) ?? answer.members[0];
	node = local ? { id: local.id, region: local.region } : null;
	open = !token();
}

function leaveView(next) {
	if (leave) {
		const run = leave;
		leave = null;
		run(next);
	}
}

/** Renders the view the address names, after making sure the node accepts this tab. */
async function render() {
	const current = route();
	if (current.parts[0] === "signin") return signIn();
	if (!node) {
		try {
			identify(await members());
		} catch (err) {
			if (err instanceof ApiError && err.unauthorized) {
				// No token yet, or one the node no longer takes: ask for it (saying why when one was refused).
				const refused = token() !== null;
				clearToken();
				return signIn(refused ? err : null);
			}
			leaveView();
			fill(main, h("h1", {}, "Tern inspector"), errorBox(err));
			return;
		}
	}
	showHeader();
	leaveView(current);
	const [view, ...rest] = current.parts;
	const context = { main, params: current.params, node };
	// A view renders at once and loads its data in the background; what it returns stops its timers and sockets.
	if (view === "actors") leave = actorsView.render(context);
	else if (view === "actor" && rest[0]) leave = actorView.render({ ...context, actorId: rest[0], tab: rest[1] });
	else leave = clusterView.render(context);
}

window.addEventListener("hashchange", () => {
	render();
	main.focus({ preventScroll: true });
});
render();
