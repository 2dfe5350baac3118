//! How much encrypted output one TLS connection of the proxy may queue (issue 19). rustls accepts
//! plaintext only while its queue of records not yet written stays under a limit, 64 KiB by
//! default; the proxy's body writes are a 64 KiB read plus chunk framing (and the scrubber's
//! hold-back), so with the default every such write was split: the records that fit went out in
//! one `writev`, the last few dozen bytes in a record and a `writev` of their own (2,010 `writev`
//! per 64 MiB download instead of ~1,030). It must stay a bound: a slow peer leaves at most this
//! much ciphertext queued per connection.

/// Twice a body read: a whole write, framing and hold-back included, always fits.
pub(crate) const SEND_LIMIT: usize = 128 * 1024;

/// Raises the connection's send queue limit to [`SEND_LIMIT`].
pub(crate) fn widen_send_queue<Data>(connection: &mut rustls::ConnectionCommon<Data>) {
    connection.set_buffer_limit(Some(SEND_LIMIT));
}
