//! Fetching blobs over HTTP.
