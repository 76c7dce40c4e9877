// The `sqlite` ready actor: execute / query / batch, parameters, value types, SQL errors.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ENCODINGS, connected, describeError, isActorError, startServer, uniqueKey } from "./helpers.js";

const T = { timeout: 120_000 };
const SQL_ERROR = ["database", "sql_error"];
const NOT_ALLOWED = ["database", "statement_not_allowed"];

let server;
before(async () => {
	server = await startServer();
});
after(async () => {
	await server?.close();
});

const bytes = (v) => {
	assert.ok(v instanceof Uint8Array, `expected a Uint8Array, got ${v?.constructor?.name}: ${JSON.stringify(v)}`);
	return Array.from(v);
};

for (const encoding of ENCODINGS) {
	describe(`sqlite [${encoding}]`, () => {
		test("execute and query: results, rows as objects in column order", T, async () => {
			const db = server.client(encoding).sqlite.getOrCreate(uniqueKey("sql"));
			const created = await db.execute(
				"CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL)",
			);
			assert.deepEqual(Object.keys(created).sort(), ["lastInsertRowid", "rowsAffected"]);
			assert.equal(created.rowsAffected, 0);

			assert.deepEqual(await db.execute("INSERT INTO items (name, qty, price) VALUES (?, ?, ?)", ["apple", 3, 1.5]), {
				rowsAffected: 1,
				lastInsertRowid: 1,
			});
			assert.deepEqual(await db.execute("INSERT INTO items (name, qty) VALUES (?, ?), (?, ?)", ["pear", 1, "fig", 2]), {
				rowsAffected: 2,
				lastInsertRowid: 3,
			});
			const upd = await db.execute("UPDATE items SET qty = qty + 1");
			assert.equal(upd.rowsAffected, 3);
			// A statement without params argument at all, and with null.
			assert.equal((await db.execute("DELETE FROM items WHERE name = 'nothing'", null)).rowsAffected, 0);

			const rows = await db.query("SELECT id, name, qty, price FROM items ORDER BY id");
			assert.deepEqual(rows, [
				{ id: 1, name: "apple", qty: 4, price: 1.5 },
				{ id: 2, name: "pear", qty: 2, price: null },
				{ id: 3, name: "fig", qty: 3, price: null },
			]);
			assert.deepEqual(Object.keys(rows[0]), ["id", "name", "qty", "price"]);
			assert.deepEqual(await db.query("SELECT name FROM items WHERE qty > ? ORDER BY name", [2]), [
				{ name: "apple" },
				{ name: "fig" },
			]);
			assert.deepEqual(await db.query("SELECT * FROM items WHERE id = ?", [99]), []);
			// Column aliases and expressions.
			assert.deepEqual(await db.query("SELECT count(*) AS n, sum(qty) AS total FROM items"), [{ n: 3, total: 9 }]);
			// Data persists across calls on other handles (same key → same database).
			assert.equal((await db.query("SELECT count(*) AS n FROM items"))[0].n, 3);
		});

		test("named parameters bind :key, @key and $key", T, async () => {
			const db = server.client(encoding).sqlite.getOrCreate(uniqueKey("sql-named"));
			await db.execute("CREATE TABLE t (name TEXT, qty INTEGER)");
			await db.execute("INSERT INTO t VALUES (:name, :qty)", { name: "kiwi", qty: 7 });
			await db.execute("INSERT INTO t VALUES (@name, @qty)", { name: "lime", qty: 8 });
			await db.execute("INSERT INTO t VALUES ($name, $qty)", { name: "plum", qty: 9 });
			await db.execute("INSERT INTO t VALUES (:name, :qty)", { ":name": "date", ":qty": 10 });
			// One name used twice binds the same value.
			await db.execute("INSERT INTO t VALUES (:v, length(:v))", { v: "abcd" });
			assert.deepEqual(await db.query("SELECT name, qty FROM t WHERE qty >= :min ORDER BY qty", { min: 4 }), [
				{ name: "abcd", qty: 4 },
				{ name: "kiwi", qty: 7 },
				{ name: "lime", qty: 8 },
				{ name: "plum", qty: 9 },
				{ name: "date", qty: 10 },
			]);
			// A missing named value is an SQL error, not a silent NULL.
			await assert.rejects(db.execute("INSERT INTO t VALUES (:name, :qty)", { name: "x" }), isActorError(...SQL_ERROR));
			// Positional count mismatch is an SQL error.
			await assert.rejects(db.execute("INSERT INTO t VALUES (?, ?)", ["only one"]), isActorError(...SQL_ERROR));
			assert.equal((await db.query("SELECT count(*) AS n FROM t"))[0].n, 5);
		});

		test("value types: BLOB → Uint8Array, integers beyond 2^53 → BigInt, reals, NULL, booleans", T, async () => {
			const db = server.client(encoding).sqlite.getOrCreate(uniqueKey("sql-types"));
			await db.execute("CREATE TABLE v (id INTEGER PRIMARY KEY, data BLOB, big INTEGER, neg INTEGER, small INTEGER, r REAL, b INTEGER, n TEXT)");
			const blob = new Uint8Array([0, 1, 2, 127, 128, 255]);
			const big = 2n ** 60n + 1n;
			const neg = -(2n ** 62n) - 7n;
			await db.execute("INSERT INTO v (data, big, neg, small, r, b, n) VALUES (?, ?, ?, ?, ?, ?, ?)", [
				blob,
				big,
				neg,
				42,
				-0.25,
				true,
				null,
			]);
			const [row] = await db.query(
				"SELECT data, big, neg, small, r, b, n, length(data) AS len, typeof(big) AS tb, typeof(data) AS td FROM v",
			);
			assert.deepEqual(bytes(row.data), [0, 1, 2, 127, 128, 255]);
			assert.equal(row.len, 6);
			assert.equal(row.td, "blob");
			assert.equal(typeof row.big, "bigint", `big came back as ${typeof row.big}`);
			assert.equal(row.big, big);
			assert.equal(row.tb, "integer");
			assert.equal(typeof row.neg, "bigint");
			assert.equal(row.neg, neg);
			assert.equal(row.small, 42);
			assert.equal(row.r, -0.25);
			assert.equal(row.b, 1);
			assert.equal(row.n, null);

			// Bounds of the JavaScript safe range and of SQLite's 64-bit integers.
			const [edges] = await db.query(
				"SELECT 9007199254740991 AS safe, -9007199254740991 AS negsafe, 9007199254740993 AS unsafe, 9223372036854775807 AS max, -9223372036854775808 AS min, 4294967296 AS two32, x'' AS empty",
			);
			assert.equal(edges.safe, 9007199254740991);
			assert.equal(edges.negsafe, -9007199254740991);
			assert.equal(edges.two32, 4294967296);
			assert.equal(edges.unsafe, 9007199254740993n);
			assert.equal(edges.max, 9223372036854775807n);
			assert.equal(edges.min, -9223372036854775808n);
			assert.deepEqual(bytes(edges.empty), []);

			// A BigInt parameter that still fits in 53 bits is the same number to SQLite.
			assert.deepEqual(await db.query("SELECT ? + 1 AS x", [41n]), [{ x: 42 }]);
			// Beyond SQLite's 64-bit range is refused, not truncated or stored as something else (a CBOR bignum
			// must not be bound as a BLOB of its magnitude).
			for (const tooBig of [2n ** 63n, 2n ** 64n, -(2n ** 64n) - 5n]) {
				const outcome = await db.query("SELECT ? AS x, typeof(?) AS t", [tooBig, tooBig]).then(
					(rows) => ({ rows }),
					(err) => ({ err }),
				);
				const shown = JSON.stringify(outcome.rows, (_, v) =>
					v instanceof Uint8Array ? `Uint8Array[${Array.from(v)}]` : v,
				);
				assert.ok(outcome.err, `parameter ${tooBig}n was accepted and came back as ${shown}`);
				isActorError(...SQL_ERROR)(outcome.err);
			}

			// BLOB parameters in WHERE clauses.
			assert.deepEqual(await db.query("SELECT id FROM v WHERE data = ?", [blob]), [{ id: 1 }]);
		});

		test("batch runs in one transaction; a failing statement rolls back all", T, async (t) => {
			const db = server.client(encoding).sqlite.getOrCreate(uniqueKey("sql-batch"));
			await db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, name TEXT UNIQUE)");
			const results = await db.batch([
				{ sql: "INSERT INTO b (name) VALUES (?)", params: ["one"] },
				{ sql: "INSERT INTO b (name) VALUES (:n)", params: { n: "two" } },
				{ sql: "SELECT name FROM b ORDER BY id" },
			]);
			t.diagnostic(`batch results: ${JSON.stringify(results, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`);
			assert.equal(results.length, 3);
			assert.equal(results[0].rowsAffected, 1);
			assert.equal(results[0].lastInsertRowid, 1);
			assert.equal(results[1].rowsAffected, 1);
			assert.equal(results[1].lastInsertRowid, 2);
			assert.deepEqual(results[2].rows, [{ name: "one" }, { name: "two" }]);

			let observed;
			await assert.rejects(
				db.batch([
					{ sql: "INSERT INTO b (name) VALUES (?)", params: ["three"] },
					{ sql: "UPDATE b SET name = 'renamed' WHERE name = 'one'" },
					{ sql: "INSERT INTO b (name) VALUES (?)", params: ["two"] }, // UNIQUE violation
				]),
				(err) => {
					observed = err;
					return isActorError(...SQL_ERROR)(err);
				},
			);
			t.diagnostic(`failing batch: ${describeError(observed)}`);
			assert.deepEqual(await db.query("SELECT name FROM b ORDER BY id"), [{ name: "one" }, { name: "two" }]);

			// A syntax error in the last statement rolls back too.
			await assert.rejects(
				db.batch([{ sql: "DELETE FROM b" }, { sql: "SELEC nonsense" }]),
				isActorError(...SQL_ERROR),
			);
			assert.equal((await db.query("SELECT count(*) AS n FROM b"))[0].n, 2);
			// An empty batch is fine.
			assert.deepEqual(await db.batch([]), []);
		});

		test("SQL errors are database.sql_error with SQLite's message", T, async (t) => {
			const db = server.client(encoding).sqlite.getOrCreate(uniqueKey("sql-err"));
			let observed;
			await assert.rejects(db.query("SELEC 1"), (err) => {
				observed = err;
				return isActorError(...SQL_ERROR)(err);
			});
			t.diagnostic(`syntax error: ${describeError(observed)}`);
			assert.match(observed.message, /syntax|SELEC/i);
			await assert.rejects(db.query("SELECT * FROM no_such_table"), (err) => {
				isActorError(...SQL_ERROR)(err);
				assert.match(err.message, /no_such_table/);
				return true;
			});
			await db.execute("CREATE TABLE u (x INTEGER NOT NULL)");
			await assert.rejects(db.execute("INSERT INTO u VALUES (NULL)"), isActorError(...SQL_ERROR));
			// The runtime's own tables are off limits.
			await assert.rejects(db.query("SELECT * FROM _tern_state"), isActorError(...NOT_ALLOWED));
			await assert.rejects(db.execute("ATTACH DATABASE 'x.db' AS x"), isActorError(...NOT_ALLOWED));
			// The actor is still healthy afterwards.
			assert.deepEqual(await db.query("SELECT 1 AS one"), [{ one: 1 }]);
		});

		test("over a connection: same results, bigints and blobs included", T, async () => {
			const client = server.client(encoding);
			const key = uniqueKey("sql-conn");
			const conn = client.sqlite.getOrCreate(key).connect();
			try {
				await connected(conn);
				await conn.execute("CREATE TABLE c (data BLOB, big INTEGER)");
				const r = await conn.execute("INSERT INTO c VALUES (?, ?)", [new Uint8Array([9, 8, 7]), 2n ** 55n]);
				assert.deepEqual(r, { rowsAffected: 1, lastInsertRowid: 1 });
				const [row] = await conn.query("SELECT data, big FROM c");
				assert.deepEqual(bytes(row.data), [9, 8, 7]);
				assert.equal(row.big, 2n ** 55n);
				await assert.rejects(conn.query("nope"), isActorError(...SQL_ERROR));
				// The connection survives the SQL error.
				assert.deepEqual(await conn.query("SELECT count(*) AS n FROM c"), [{ n: 1 }]);
				// A stateless handle sees the same database.
				assert.deepEqual(await client.sqlite.getOrCreate(key).query("SELECT count(*) AS n FROM c"), [{ n: 1 }]);
			} finally {
				await conn.dispose();
			}
		});
	});
}
