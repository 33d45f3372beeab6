//! Reports made from [`Record`](crate::Record)s.
