//! The data path: accepting a client, pairing it with one broker connection, and moving
//! frames between the two.
//!
//! [`listener`] accepts, one accept loop per route; [`session`] runs the two pumps of one
//! connection pair; [`frame`] peeks at frame heads; [`inflight`] remembers which response
//! each request awaits; [`splice`] and [`transport`] move bytes, socket to socket where they
//! can; [`deadline`] and [`workers`] are the timers and threads underneath.

pub mod deadline;
pub mod frame;
pub mod inflight;
pub mod listener;
pub mod session;
pub mod splice;
pub mod transport;
pub mod workers;
