//! Tern's client wire protocol, compatible with RivetKit's client protocol (version 4).
//!
//! The crate is shared by the gateway (server side) and the Rust client (client side), so every message can be
//! both encoded and decoded in each of the three encodings RivetKit clients speak:
//!
//! * `bare`: a 2-byte little-endian version prefix followed by a BARE body (see [`bare`]);
//! * `cbor`: the same object shape as JSON, as a CBOR map, with `id`/`actionId` written as 8-byte unsigned
//!   integers so that JavaScript decodes them as `BigInt`;
//! * `json`: tagged-union objects with bigint ids written as `["$BigInt","n"]`.
//!
//! User values (action arguments and outputs, event arguments, queue bodies, connection parameters) are carried
//! as [`Value`] (a CBOR value). [`value`] converts between that and RivetKit's "JSON-compat" representation.

pub mod bare;
pub mod encoding;
pub mod error;
pub mod key;
pub mod messages;
pub mod value;

pub use ciborium::Value;
pub use encoding::Encoding;
pub use error::ClientError;
pub use messages::{ActorSpecifier, ErrorFrame, ToClient, ToServer};
