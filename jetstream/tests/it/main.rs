//! weir-jetstream against a real NATS JetStream (`just nats-up`).

mod chaos;
mod sink;
mod source;
mod support;
