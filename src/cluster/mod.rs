//! The cluster side: which broker each route reaches ([`route`]), how the gateway learns the
//! brokers ([`discovery`]), and how it dials them ([`upstream`]), over TLS ([`tls`]) and with
//! its own SASL login ([`sasl`], [`scram`]) where brokers require one, and only where
//! [`allow`] permits.

pub mod allow;
pub mod discovery;
pub mod route;
pub mod sasl;
pub mod scram;
pub mod tls;
pub mod upstream;
