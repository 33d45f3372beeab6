//! Blob contents and digests.
