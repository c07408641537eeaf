//! Bodies in motion: a client's plaintext encrypted on its way to the backend, and the
//! backend's ciphertext decrypted on its way to the client, one piece at a time (memory per
//! request is a few pieces and one frame, whatever the object's size).
//!
//! An upload's final frame is held back until the client's body ended at its declared
//! length and every digest the client sent (Content-MD5, an `x-amz-checksum-*` header or
//! trailer) matched: a bad digest, a bad chunk signature, a short body or a client that
//! disconnects makes the backend request fail before its last byte, so the backend never
//! stores the object.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use base64ct::{Base64, Encoding};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body::{Body, Frame, SizeHint};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::dto::{Checksum, StreamingBlob};
use s3s::{S3Error, S3ErrorCode, TrailingHeaders};
use tokio::sync::mpsc;

use super::error::s3;

type Piece = Result<Bytes, std::io::Error>;

/// A request body for the backend, fed by the encrypting task, of an exact length (so the
/// SDK sends a Content-Length and the backend can tell a cut body from a whole one).
pub struct BackendBody {
    rx: mpsc::Receiver<Piece>,
    remaining: u64,
}

impl Body for BackendBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) if self.remaining > 0 => {
                Poll::Ready(Some(Err(std::io::Error::other("upload cut before its end"))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

impl BackendBody {
    pub fn into_stream(self) -> ByteStream {
        ByteStream::new(SdkBody::from_body_1_x(self))
    }
}

/// The digests a client sent for a body: checked once the body ended.
#[derive(Default)]
pub struct Checks {
    /// Content-MD5, base64.
    pub content_md5: Option<String>,
    /// `x-amz-checksum-*` headers, base64.
    pub header: Checksum,
    /// The trailer the client announced (`x-amz-trailer`), and where s3s puts it.
    pub trailer: Option<(String, TrailingHeaders)>,
}

impl Checks {
    /// The hasher for every checksum a header or the trailer will name.
    fn hasher(&self) -> ChecksumHasher {
        let h = &self.header;
        let t = self.trailer.as_ref().map(|(n, _)| n.as_str()).unwrap_or_default();
        ChecksumHasher {
            crc32: (h.checksum_crc32.is_some() || t == "x-amz-checksum-crc32").then(Crc32::new),
            crc32c: (h.checksum_crc32c.is_some() || t == "x-amz-checksum-crc32c").then(Crc32c::new),
            sha1: (h.checksum_sha1.is_some() || t == "x-amz-checksum-sha1").then(Sha1::new),
            sha256: (h.checksum_sha256.is_some() || t == "x-amz-checksum-sha256").then(Sha256::new),
            crc64nvme: (h.checksum_crc64nvme.is_some() || t == "x-amz-checksum-crc64nvme").then(Crc64Nvme::new),
        }
    }

    /// Compares what was computed with what the client sent; returns the computed sums.
    fn verify(&self, md5: &[u8; 16], got: Checksum) -> Result<Checksum, S3Error> {
        if let Some(want) = &self.content_md5
            && Base64::decode_vec(want.trim()).ok().as_deref() != Some(&md5[..])
        {
            return Err(s3(S3ErrorCode::BadDigest, "the Content-MD5 you specified did not match what was received"));
        }
        let h = &self.header;
        let trailed = self.trailer.as_ref().and_then(|(name, t)| {
            t.read(|m| m.get(name.as_str()).and_then(|v| v.to_str().ok()).map(str::to_string))
                .flatten()
                .map(|v| (name, v))
        });
        if let Some((name, _)) = &self.trailer
            && trailed.is_none()
        {
            return Err(s3(S3ErrorCode::InvalidRequest, format!("the body ended without its {name} trailer")));
        }
        let pairs = [
            ("x-amz-checksum-crc32", &h.checksum_crc32, &got.checksum_crc32),
            ("x-amz-checksum-crc32c", &h.checksum_crc32c, &got.checksum_crc32c),
            ("x-amz-checksum-sha1", &h.checksum_sha1, &got.checksum_sha1),
            ("x-amz-checksum-sha256", &h.checksum_sha256, &got.checksum_sha256),
            ("x-amz-checksum-crc64nvme", &h.checksum_crc64nvme, &got.checksum_crc64nvme),
        ];
        for (name, header, computed) in pairs {
            let want =
                header.clone().or_else(|| trailed.as_ref().filter(|(n, _)| n.as_str() == name).map(|(_, v)| v.clone()));
            if let Some(want) = want
                && computed.as_deref() != Some(want.trim())
            {
                return Err(s3(
                    S3ErrorCode::BadDigest,
                    format!("the {name} you specified did not match what was received"),
                ));
            }
        }
        Ok(got)
    }
}

/// What an upload's client body turned out to be.
pub struct Received {
    /// MD5 of the plaintext.
    pub md5: [u8; 16],
    /// The checksums computed for the client (those it asked for).
    pub checksum: Checksum,
}

/// Starts encrypting `body` (exactly `len` plaintext bytes) with `enc`; returns the backend
/// request's body and the task's result, which the caller awaits once the backend answered.
pub fn encrypt<E>(
    body: StreamingBlob,
    len: u64,
    ct_len: u64,
    mut enc: E,
    checks: Checks,
) -> (BackendBody, tokio::task::JoinHandle<Result<Received, Stopped>>)
where
    E: isec_core::Stream + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Piece>(4);
    let task = tokio::spawn(async move {
        let r = pump(body, len, &mut enc, &checks, &tx).await;
        if let Err(Stopped::Client(e)) = &r {
            // The backend request fails before its last byte: nothing is stored.
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
        r
    });
    (BackendBody { rx, remaining: ct_len }, task)
}

async fn pump<E: isec_core::Stream>(
    mut body: StreamingBlob,
    len: u64,
    enc: &mut E,
    checks: &Checks,
    tx: &mpsc::Sender<Piece>,
) -> Result<Received, Stopped> {
    let mut md5 = Md5::new();
    let mut hasher = checks.hasher();
    let mut seen = 0u64;
    let gone = |_| Stopped::Backend;
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(client_body).map_err(Stopped::Client)?;
        seen += piece.len() as u64;
        if seen > len {
            return Err(Stopped::Client(s3(S3ErrorCode::InvalidRequest, "the body is longer than its Content-Length")));
        }
        md5.update(&piece);
        hasher.update(&piece);
        let mut out = vec![0u8; enc.update_len(piece.len())];
        let n = enc.update(&piece, &mut out).map_err(|e| Stopped::Client(super::error::core(e, "encrypt")))?;
        out.truncate(n);
        if !out.is_empty() {
            tx.send(Ok(Bytes::from(out))).await.map_err(gone)?;
        }
    }
    if seen != len {
        return Err(Stopped::Client(s3(
            S3ErrorCode::IncompleteBody,
            format!("the body ended after {seen} of {len} bytes"),
        )));
    }
    let md5 = md5.finalize();
    let checksum = checks.verify(&md5, hasher.finalize()).map_err(Stopped::Client)?;
    let mut last = vec![0u8; enc.finish_len()];
    let n = enc.finish(&mut last).map_err(|e| Stopped::Client(super::error::core(e, "encrypt")))?;
    last.truncate(n);
    tx.send(Ok(Bytes::from(last))).await.map_err(gone)?;
    Ok(Received { md5, checksum })
}

/// Why an upload's body stopped short.
pub enum Stopped {
    /// The client's body was refused (a digest, a signature, its length).
    Client(S3Error),
    /// The backend request ended first (its own error says why).
    Backend,
}

/// The outcome of an upload: the backend's answer and what the body turned out to be. A
/// refused client body is the answer even though the backend request failed too (it
/// failed because the body was cut); otherwise the backend's error is.
pub async fn settle<T>(
    task: tokio::task::JoinHandle<Result<Received, Stopped>>,
    sent: Result<T, S3Error>,
) -> Result<(T, Received), S3Error> {
    let got = task.await.map_err(|e| s3(S3ErrorCode::InternalError, format!("encrypting task: {e}")))?;
    match (sent, got) {
        (Ok(t), Ok(r)) => Ok((t, r)),
        (_, Err(Stopped::Client(e))) | (Err(e), _) => Err(e),
        (Ok(_), Err(Stopped::Backend)) => Err(s3(S3ErrorCode::InternalError, "the backend ended the upload early")),
    }
}

/// A client body that failed (a chunk signature, a disconnect): s3s's own error when it is one.
fn client_body(e: s3s::StdError) -> S3Error {
    match e.downcast::<S3Error>() {
        Ok(e) => *e,
        // s3s's aws-chunked error type is not public: its message names a bad chunk signature.
        Err(e) if e.to_string().contains("SignatureMismatch") => {
            s3(S3ErrorCode::SignatureDoesNotMatch, format!("a chunk signature of the request body does not match: {e}"))
        }
        Err(e) => s3(S3ErrorCode::IncompleteBody, format!("reading the request body: {e}")),
    }
}

/// The plaintext of `body` through `dec`: each piece released only once its frames verified;
/// a failure (a tampered frame, a cut object) ends the response with an error, so the client
/// sees a broken transfer, never unauthenticated bytes.
pub fn decrypt(body: ByteStream, dec: Box<dyn isec_core::Stream + Send>, what: String) -> StreamingBlob {
    struct State {
        body: ByteStream,
        dec: Option<Box<dyn isec_core::Stream + Send>>,
        what: String,
    }
    let st = State { body, dec: Some(dec), what };
    let s = futures_util::stream::try_unfold(st, |mut st| async move {
        loop {
            let Some(dec) = st.dec.as_mut() else { return Ok(None) };
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    let mut out = vec![0u8; dec.update_len(chunk.len())];
                    let n = dec.update(&chunk, &mut out).map_err(|e| failed(e, &st.what))?;
                    if n > 0 {
                        out.truncate(n);
                        return Ok(Some((Bytes::from(out), st)));
                    }
                }
                Some(Err(e)) => return Err(std::io::Error::other(format!("{}: backend: {e}", st.what))),
                None => {
                    let mut out = vec![0u8; dec.finish_len()];
                    let n = dec.finish(&mut out).map_err(|e| failed(e, &st.what))?;
                    st.dec = None;
                    out.truncate(n);
                    if n > 0 {
                        return Ok(Some((Bytes::from(out), st)));
                    }
                    return Ok(None);
                }
            }
        }
    });
    StreamingBlob::wrap(sync_wrapper::SyncStream::new(s))
}

fn failed(e: isec_core::Error, what: &str) -> std::io::Error {
    eprintln!("isec gateway: {what}: {} (response cut)", e.code());
    std::io::Error::other(format!("{what}: isec {}", e.code()))
}

/// Hex of a digest.
pub fn hex16(d: &[u8; 16]) -> String {
    hex::encode(d)
}
