//! What operators see: the admin endpoint ([`admin`]) with its [`metrics`] and the open
//! [`connections`], and `kafka-edge diagnose` ([`diagnose`]).

pub mod admin;
pub mod connections;
pub mod diagnose;
pub mod metrics;
pub mod throttle;
