//! Integration tests of the delivery scenario: a tiny run of every phase
//! against real servers on 127.0.0.1.

mod scenario;
