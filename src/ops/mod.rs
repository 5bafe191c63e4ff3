//! What operators see: the admin endpoint ([`admin`]) with its [`metrics`], and
//! `kafka-edge diagnose` ([`diagnose`]).

pub mod admin;
pub mod diagnose;
pub mod metrics;
pub mod throttle;
