//! Integration tests of weir-http: a real server on 127.0.0.1 and real
//! HTTP clients (hyper) over real sockets.

#[macro_use]
mod support;

mod conditional;
mod corpus;
mod disconnect;
mod encoding;
mod metrics;
mod objects;
mod ranges;
mod rows;
mod throttle;
mod traversal;
mod uploads;
mod wire;
