//! The data path: accepting a client, pairing it with one broker connection, and moving
//! frames between the two.
//!
//! [`listener`] accepts, one accept loop per route; [`session`] runs the two pumps of one
//! connection pair, doing only I/O; [`exchange`] is the state machine they drive, which owns
//! the conversation (which answer belongs to which request, what is rewritten, who is idle);
//! [`frame`] peeks at frame heads; [`splice`] and [`transport`] move bytes, socket to socket
//! where they can; [`deadline`] and [`workers`] are the timers and threads underneath.

pub mod admission;
pub mod deadline;
pub mod exchange;
pub mod frame;
pub mod listener;
pub mod session;
pub mod splice;
pub mod transport;
pub mod workers;
