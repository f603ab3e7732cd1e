//! Integration tests: the real server against a real loopback origin.
