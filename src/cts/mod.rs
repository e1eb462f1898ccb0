//! The CTS formats, pure and I/O-free: where files are, what trace files hold.
pub mod digest;
pub mod layout;
pub mod trace;
