//! The loopback blob server.
