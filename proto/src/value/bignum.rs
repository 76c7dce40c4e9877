//! Decimal text ⇄ CBOR integers of any size, for RivetKit's `["$BigInt","<decimal>"]` form.
//!
//! Integers that fit ciborium's [`Integer`](ciborium::value::Integer) (−2^64 ..= 2^64−1) are `Value::Integer`;
//! larger ones are CBOR bignums: tag 2 holding the big-endian magnitude, or tag 3 holding the magnitude of
//! `−1 − n`, with no leading zero bytes (the same canonical form ciborium produces for 128-bit integers).
//! Conversions are quadratic in the number of digits, so both directions refuse inputs above a size cap.

use crate::Value;

/// Longest decimal (without sign) converted to a bignum; a 1,700-byte magnitude.
const MAX_DIGITS: usize = 4096;
/// Longest bignum magnitude converted to decimal.
const MAX_MAGNITUDE_BYTES: usize = 1700;

const TAG_POSITIVE: u64 = 2;
const TAG_NEGATIVE: u64 = 3;

/// A magnitude as base-2^32 limbs, least significant first, without trailing zero limbs.
type Limbs = Vec<u32>;

/// Parses an optionally `-`-signed decimal (what JavaScript's `BigInt.prototype.toString` produces).
/// `None` for anything else, including an empty string, other characters or more than 4,096 digits.
pub(super) fn parse_decimal(text: &str) -> Option<Value> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut limbs = Limbs::new();
    for chunk in digits.as_bytes().chunks(9) {
        let chunk_value = chunk.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        mul_add(&mut limbs, 10u32.pow(chunk.len() as u32), chunk_value);
    }
    if negative && !limbs.is_empty() {
        // Tag 3 and ciborium's negative integers both store −1 − n.
        sub_one(&mut limbs);
        Some(from_limbs(TAG_NEGATIVE, &limbs, |m| -1 - i128::from(m)))
    } else {
        Some(from_limbs(TAG_POSITIVE, &limbs, i128::from))
    }
}

/// The decimal text of a bignum: `tag` 2 or 3 around its big-endian magnitude bytes. `None` for other tags
/// and for magnitudes over 1,700 bytes.
pub(super) fn bignum_to_decimal(tag: u64, magnitude: &[u8]) -> Option<String> {
    if magnitude.len() > MAX_MAGNITUDE_BYTES || !(tag == TAG_POSITIVE || tag == TAG_NEGATIVE) {
        return None;
    }
    let mut limbs = Limbs::new();
    for byte in magnitude {
        mul_add(&mut limbs, 256, u32::from(*byte));
    }
    if tag == TAG_NEGATIVE {
        mul_add(&mut limbs, 1, 1);
    }
    let mut chunks = Vec::new();
    while !limbs.is_empty() {
        chunks.push(div_rem(&mut limbs, 1_000_000_000));
    }
    let mut text = String::from(if tag == TAG_NEGATIVE { "-" } else { "" });
    match chunks.split_last() {
        None => text.push('0'),
        Some((most, rest)) => {
            text.push_str(&most.to_string());
            for chunk in rest.iter().rev() {
                text.push_str(&format!("{chunk:09}"));
            }
        }
    }
    Some(text)
}

/// `Value::Integer` when the magnitude fits 64 bits, else the bignum `tag` around its big-endian bytes.
fn from_limbs(tag: u64, limbs: &[u32], to_i128: fn(u64) -> i128) -> Value {
    if limbs.len() <= 2 {
        let magnitude = limbs.iter().rev().fold(0u64, |acc, limb| (acc << 32) | u64::from(*limb));
        if let Ok(integer) = ciborium::value::Integer::try_from(to_i128(magnitude)) {
            return Value::Integer(integer);
        }
    }
    let bytes: Vec<u8> = limbs.iter().rev().flat_map(|limb| limb.to_be_bytes()).skip_while(|b| *b == 0).collect();
    Value::Tag(tag, Box::new(Value::Bytes(bytes)))
}

/// `limbs = limbs * mul + add`.
fn mul_add(limbs: &mut Limbs, mul: u32, add: u32) {
    let mut carry = u64::from(add);
    for limb in limbs.iter_mut() {
        let product = u64::from(*limb) * u64::from(mul) + carry;
        *limb = product as u32;
        carry = product >> 32;
    }
    if carry != 0 {
        limbs.push(carry as u32);
    }
}

/// `limbs = limbs - 1`; `limbs` must be non-zero.
fn sub_one(limbs: &mut Limbs) {
    for limb in limbs.iter_mut() {
        let (value, borrow) = limb.overflowing_sub(1);
        *limb = value;
        if !borrow {
            break;
        }
    }
    trim(limbs);
}

/// `limbs = limbs / div`, returning the remainder.
fn div_rem(limbs: &mut Limbs, div: u32) -> u32 {
    let mut rem = 0u64;
    for limb in limbs.iter_mut().rev() {
        let current = (rem << 32) | u64::from(*limb);
        *limb = (current / u64::from(div)) as u32;
        rem = current % u64::from(div);
    }
    trim(limbs);
    rem as u32
}

fn trim(limbs: &mut Limbs) {
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i128) -> Value {
        Value::Integer(v.try_into().unwrap())
    }

    #[test]
    fn small_values_are_integers() {
        assert_eq!(parse_decimal("0"), Some(int(0)));
        assert_eq!(parse_decimal("-0"), Some(int(0)));
        assert_eq!(parse_decimal("123"), Some(int(123)));
        assert_eq!(parse_decimal("-1"), Some(int(-1)));
        assert_eq!(parse_decimal("18446744073709551615"), Some(int(u64::MAX as i128)));
        assert_eq!(parse_decimal("-18446744073709551616"), Some(int(-(1i128 << 64))));
        assert_eq!(parse_decimal("000042"), Some(int(42)));
    }

    #[test]
    fn large_values_match_ciborium_bignums() {
        for v in [1i128 << 64, (1i128 << 64) + 7, i128::MAX, -(1i128 << 64) - 1, i128::MIN, -(1i128 << 100)] {
            assert_eq!(parse_decimal(&v.to_string()), Some(Value::from(v)), "{v}");
        }
        assert_eq!(parse_decimal(&u128::MAX.to_string()), Some(Value::from(u128::MAX)));
    }

    #[test]
    fn decimal_round_trips() {
        let big = format!("{}{}", u128::MAX, u128::MAX);
        for text in ["18446744073709551616", "-18446744073709551617", big.as_str(), &format!("-{big}")] {
            let Some(Value::Tag(tag, inner)) = parse_decimal(text) else { panic!("{text}") };
            let Value::Bytes(bytes) = *inner else { panic!("{text}") };
            assert_ne!(bytes.first(), Some(&0));
            assert_eq!(bignum_to_decimal(tag, &bytes).as_deref(), Some(text));
        }
        assert_eq!(bignum_to_decimal(2, &[]).as_deref(), Some("0"));
        assert_eq!(bignum_to_decimal(3, &[]).as_deref(), Some("-1"));
        assert_eq!(bignum_to_decimal(2, &[0, 0, 1, 0]).as_deref(), Some("256"));
    }

    #[test]
    fn rejects_non_decimals_and_oversized_inputs() {
        for bad in ["", "-", "1.5", "0x10", " 1", "1e3", "+1", "--1"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(parse_decimal(&"9".repeat(MAX_DIGITS + 1)), None);
        assert!(parse_decimal(&"9".repeat(MAX_DIGITS)).is_some());
        assert_eq!(bignum_to_decimal(2, &vec![1; MAX_MAGNITUDE_BYTES + 1]), None);
        assert_eq!(bignum_to_decimal(4, &[1]), None);
    }
}
