// CBOR (RFC 8949), as much as the page needs: encoding a create's input (JSON values) and decoding the values the
// runtime stores as CBOR (a schedule's arguments) to show them.

const utf8 = new TextEncoder();

function head(out, major, length) {
	const m = major << 5;
	if (length < 24) out.push(m | length);
	else if (length < 0x100) out.push(m | 24, length);
	else if (length < 0x10000) out.push(m | 25, length >> 8, length & 0xff);
	else if (length < 0x100000000) out.push(m | 26, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff);
	else {
		const big = BigInt(length);
		out.push(m | 27);
		for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((big >> shift) & 0xffn));
	}
}

function encodeInto(out, value) {
	if (value === null || value === undefined) out.push(0xf6);
	else if (value === false) out.push(0xf4);
	else if (value === true) out.push(0xf5);
	else if (typeof value === "number") {
		if (Number.isSafeInteger(value)) head(out, value < 0 ? 1 : 0, value < 0 ? -1 - value : value);
		else {
			const view = new DataView(new ArrayBuffer(8));
			view.setFloat64(0, value);
			out.push(0xfb, ...new Uint8Array(view.buffer));
		}
	} else if (typeof value === "string") {
		const bytes = utf8.encode(value);
		head(out, 3, bytes.length);
		for (const b of bytes) out.push(b);
	} else if (Array.isArray(value)) {
		head(out, 4, value.length);
		for (const item of value) encodeInto(out, item);
	} else if (typeof value === "object") {
		const entries = Object.entries(value);
		head(out, 5, entries.length);
		for (const [k, v] of entries) {
			encodeInto(out, k);
			encodeInto(out, v);
		}
	} else throw new Error(`cannot encode a ${typeof value} as CBOR`);
}

/** The CBOR encoding of a JSON value. */
export function encode(value) {
	const out = [];
	encodeInto(out, value);
	return new Uint8Array(out);
}

/** Decodes one CBOR item that fills `bytes`: byte strings become `["$Uint8Array", base64]`, as the API writes them. */
export function decode(bytes) {
	const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
	let at = 0;
	const need = (n) => {
		if (at + n > bytes.length) throw new Error("truncated CBOR");
	};
	const length = (info) => {
		if (info < 24) return info;
		const sizes = { 24: 1, 25: 2, 26: 4, 27: 8 };
		const size = sizes[info];
		if (!size) throw new Error(`unsupported CBOR length ${info}`);
		need(size);
		let n = 0n;
		for (let i = 0; i < size; i++) n = (n << 8n) | BigInt(bytes[at + i]);
		at += size;
		return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
	};
	const item = (depth) => {
		if (depth > 64) throw new Error("CBOR nested too deep");
		need(1);
		const first = bytes[at++];
		const major = first >> 5;
		const info = first & 31;
		if (major === 7) {
			if (info === 20) return false;
			if (info === 21) return true;
			if (info === 22 || info === 23) return null;
			if (info === 25) {
				need(2);
				const half = view.getUint16(at);
				at += 2;
				const exp = (half >> 10) & 0x1f;
				const frac = half & 0x3ff;
				const sign = half & 0x8000 ? -1 : 1;
				if (exp === 0) return sign * frac * 2 ** -24;
				if (exp === 31) return frac ? NaN : sign * Infinity;
				return sign * (1 + frac / 1024) * 2 ** (exp - 15);
			}
			if (info === 26 || info === 27) {
				const size = info === 26 ? 4 : 8;
				need(size);
				const value = size === 4 ? view.getFloat32(at) : view.getFloat64(at);
				at += size;
				return value;
			}
			throw new Error(`unsupported CBOR simple value ${info}`);
		}
		const n = length(info);
		if (typeof n === "bigint" && major > 1) throw new Error("CBOR item too long");
		switch (major) {
			case 0:
				return typeof n === "bigint" ? ["$BigInt", n.toString()] : n;
			case 1:
				return typeof n === "bigint" ? ["$BigInt", (-1n - n).toString()] : -1 - n;
			case 2: {
				need(n);
				const slice = bytes.slice(at, at + n);
				at += n;
				let binary = "";
				for (const b of slice) binary += String.fromCharCode(b);
				return ["$Uint8Array", btoa(binary)];
			}
			case 3: {
				need(n);
				const text = new TextDecoder().decode(bytes.subarray(at, at + n));
				at += n;
				return text;
			}
			case 4:
				return Array.from({ length: n }, () => item(depth + 1));
			case 5: {
				const out = {};
				for (let i = 0; i < n; i++) {
					const key = item(depth + 1);
					out[typeof key === "string" ? key : JSON.stringify(key)] = item(depth + 1);
				}
				return out;
			}
			default:
				// A tag: show the value it tags.
				return item(depth + 1);
		}
	};
	const value = item(0);
	if (at !== bytes.length) throw new Error("trailing bytes after the CBOR item");
	return value;
}
