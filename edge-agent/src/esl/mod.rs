//! FreeSWITCH Event Socket protocol, sans-IO: framing ([`parser`]), event decoding
//! ([`event`]), validated command encoding ([`command`]), the inbound connection state
//! machine ([`conn`]) and the reconnect schedule ([`backoff`]). Nothing here does I/O
//! or reads a clock; [`crate::client`] is the tokio adapter.

pub mod backoff;
pub mod command;
pub mod conn;
pub mod event;
pub mod message;
pub mod parser;

pub use command::{ApiCommand, Command, CommandError, Subscription, Uuid};
pub use conn::{CloseReason, ConnConfig, Connection, Output, Reply, RequestId, State};
pub use event::{parse_event, Event, EventFormat};
pub use message::{Headers, Message, MessageKind};
pub use parser::{Limits, ParseError, Parser};
