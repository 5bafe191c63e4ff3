//! The client side of a connection before its first Kafka byte: client-facing TLS and SNI
//! ([`tls`]), and the PROXY protocol header a load balancer puts in front ([`proxy_protocol`]).

pub mod auth;
pub mod login;
pub mod proxy_protocol;
pub mod sniff;
pub mod tls;
pub mod versions;
