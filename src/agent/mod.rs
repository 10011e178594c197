//! The heartbeat agent (see issue 4).
