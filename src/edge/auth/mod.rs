//! Edge identity: who a client is, and what it may do. Pure parts only: every mechanism is a
//! state machine fed the client's bytes (and the time), returning the bytes to answer and, at
//! the end, a principal or a refusal; policy decisions are functions of a principal, an
//! operation and a resource. The data path calls them; nothing here touches a socket.
//!
//! - Who: [`sasl`] (what the mechanisms share: names, steps, refusals, KIP-368 session
//!   lifetimes), [`plain`], [`scram_server`], [`oauthbearer`] with [`jwt`] and [`keys`], and
//!   [`mtls`] for client certificates. Passwords live in [`credentials`] as salted SCRAM keys
//!   only; [`watch`] re-reads that file and key sets when they change.
//! - What: [`policy`] (allow-lists and `decide`) and [`apis`] (what each Kafka API needs, and
//!   the error a broker answers when it is refused). From a request's bytes: [`schema`]
//!   (Kafka 4.4's messages as a generated table), [`fields`] (a bounds-checked walk finding
//!   the values at paths such as `Topics[].Name`), [`resources`] (what the request needs, topics
//!   named by id through [`topic_ids`], the names the gateway learned) and
//!   [`verdict`] (the decision: forward, refuse, close). When refused, [`deny`] gives the
//!   answer a broker would, written by [`write`]; [`filter`] drops from answers what the
//!   principal may not see.
//! - Around them: [`config`] (the configuration sections and their validation), [`audit`]
//!   (one JSON line per login and per denial) and [`cli`] (`kafka-edge credentials add`).

pub mod apis;
pub mod audit;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod deny;
pub mod fields;
pub mod filter;
pub mod jwt;
pub mod keys;
pub mod mtls;
pub mod oauthbearer;
pub mod plain;
pub mod policy;
pub mod resources;
pub mod sasl;
pub mod schema;
pub mod scram_server;
pub mod topic_ids;
pub mod verdict;
pub mod watch;
pub mod write;
