'use strict'
// `@isec/node/s3`: isec objects through an `@aws-sdk/client-s3` v3 client.
//
// The helper only moves bytes and sequences S3 requests. Every decision is isec-core's,
// reached through the addon: what reading an object needs after its HEAD and what it is
// (`ObjectOpen`: the sidecars to fetch, then an isec envelope and table, a previous-proxy
// object, or plaintext), the metadata of a new object (`objectMetadata`), the envelope and
// the object key with a part size that fits S3's part count (`Keyring`, `fitParts`), part
// encryption with a fresh nonce prefix per call (`encryptPart`), the shape of a stored
// object and the ciphertext a plaintext range needs (`shapeFor`, `Shape#mapRange`), verified
// range decryption (`decryptRange`), the copy plan with the destination's metadata, its
// sidecar and the UploadPartCopy ranges (`decideCopy`), the S3 requests that execute it and what to undo when one fails
// (`copySteps`), an in-place migration's requests (`migrateSteps`), the GETs of a whole
// read (`WholeRead`), previous-proxy decryption (`Keyring#legacyKey`,
// `LegacyObject#planRange`), and re-encryption (`ReencryptionJob`). No metadata key or
// sidecar key of the format is named here.
//
// Errors: S3 failures are the SDK's own errors, untouched; isec failures are the addon's
// `Error`s with core's `code`.

const fs = require('node:fs')
const { pipeline, Readable } = require('node:stream')
const isec = require('./index.js')

let sdk
/** The peer dependency, loaded on first use so that `@isec/node` works without it. */
function s3() {
  if (sdk === undefined) {
    try {
      sdk = require('@aws-sdk/client-s3')
    } catch (cause) {
      const e = isec.isecError('invalid_parameter', '@isec/node/s3 needs the peer dependency @aws-sdk/client-s3 (v3)')
      e.cause = cause
      throw e
    }
  }
  return sdk
}

const MiB = 1024 * 1024
/** S3's smallest part (all but the last). */
const S3_MIN_PART = 5 * MiB
/** S3's user-metadata budget in bytes (names and values, as `metadataSize` counts them). */
const S3_METADATA_MAX = 2048
/**
 * Core's `CARRIED_HEADERS` as SDK field names: a REPLACE or a new upload would lose them, so
 * a copy step with `headers: 'carried'` sends the source's (the caller's own win).
 */
const CARRIED_HEADERS = [
  'ContentType',
  'ContentEncoding',
  'ContentDisposition',
  'ContentLanguage',
  'CacheControl',
  'Expires',
]
/** Response fields passed through from the SDK's output. */
const OUTPUT_FIELDS = [
  'ETag',
  'VersionId',
  'LastModified',
  'ContentType',
  'ContentEncoding',
  'ContentDisposition',
  'ContentLanguage',
  'CacheControl',
  'Expires',
  'Metadata',
  '$metadata',
]

/** Where `headObject` keeps the ready step core gave, for `getRange({ head })`. */
const OPENED = Symbol('isec.opened')

const invalid = (message) => isec.isecError('invalid_parameter', message)

function pick(obj, names) {
  const out = {}
  for (const n of names) if (obj[n] !== undefined) out[n] = obj[n]
  return out
}

function throwIfAborted(signal) {
  if (signal && signal.aborted) {
    const e = isec.isecError('ABORT_ERR')
    if (signal.reason !== undefined) e.cause = signal.reason
    throw e
  }
}

/** A signal that fires when `outer` does or when the returned `abort` is called. */
function linked(outer) {
  const ac = new AbortController()
  const forward = () => ac.abort(outer.reason)
  if (outer) {
    if (outer.aborted) ac.abort(outer.reason)
    else outer.addEventListener('abort', forward, { once: true })
  }
  return {
    signal: ac.signal,
    abort: (reason) => ac.abort(reason),
    dispose: () => outer && outer.removeEventListener('abort', forward),
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    throwIfAborted(signal)
    const t = setTimeout(done, ms)
    function done() {
      if (signal) signal.removeEventListener('abort', onAbort)
      resolve()
    }
    function onAbort() {
      clearTimeout(t)
      try {
        throwIfAborted(signal)
      } catch (e) {
        reject(e)
      }
    }
    if (signal) signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Runs `run(item)` for each item `pull()` yields (until it yields `null`), at most `limit`
 * at a time. `pull` is only called when a slot is free, so a producer that reads its items
 * lazily holds at most `limit + 1` of them. The first failure stops pulling, aborts the
 * others through `abort`, and is rethrown once they settled.
 */
async function bounded(limit, pull, run, abort) {
  const running = new Set()
  let failure = null
  for (;;) {
    if (failure) break
    if (running.size >= limit) {
      await Promise.race(running)
      continue
    }
    let item
    try {
      item = await pull()
    } catch (e) {
      failure = { e }
      break
    }
    if (item === null) break
    const p = run(item)
      .catch((e) => {
        if (!failure) {
          failure = { e }
          abort(e)
        }
      })
      .finally(() => running.delete(p))
    running.add(p)
  }
  if (failure) abort(failure.e)
  await Promise.all(running)
  if (failure) throw failure.e
}

/** Reads a body (an SDK stream) whole; `expected` preallocates when the length is known. */
async function collect(body, expected) {
  if (body == null) return Buffer.alloc(0)
  if (Number.isSafeInteger(expected) && expected >= 0) {
    const out = Buffer.allocUnsafe(expected)
    let n = 0
    for await (const chunk of body) {
      if (n + chunk.length > expected) throw invalid(`response body longer than its Content-Length ${expected}`)
      out.set(chunk, n)
      n += chunk.length
    }
    return n === expected ? out : out.subarray(0, n)
  }
  const chunks = []
  for await (const chunk of body) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/**
 * Ranged reads whose fetched ciphertext is at most this long are decrypted on the calling
 * thread (about a millisecond): the round trip through the libuv pool costs more than that
 * on a busy machine.
 */
const SYNC_RANGE = 2 * MiB

/** How long an idle helper keeps the ciphertext part buffers of its last upload. */
const SPARE_MS = 3000

/** Plaintext per piece of `decryptChunks`. */
const PIECE = 2 * MiB

/**
 * The chunks of a response body as they arrived (no copy) and their total `got`, which may
 * be short of `len` (the body ended early). A body longer than `len` is an error.
 */
async function readChunks(body, len) {
  const list = []
  let got = 0
  try {
    if (body == null) return { list, got }
    for await (const c of body) {
      const chunk = toBuffer(c)
      if (got + chunk.length > len) throw isec.isecError('trailing_data', `response body longer than ${len} bytes`)
      list.push(chunk)
      got += chunk.length
    }
    return { list, got }
  } finally {
    if (body != null && typeof body.destroy === 'function') body.destroy()
  }
}

/**
 * Decrypts the stored bytes of a whole object arriving as `pieces` (in order: the socket's
 * chunks) with core's one streaming decryptor `dec` of the whole object (`Decryptor` or
 * `LegacyDecryptor`) into `out`, on this thread (microseconds per 64 KiB chunk; a round
 * trip through the libuv pool measured no faster). A
 * call whose bound does not fit what is left of `out` goes through a scratch buffer, so
 * nothing is ever written outside it. Returns the plaintext length once `final` verified
 * the object's end; on any failure the plaintext written so far is wiped.
 */
async function decryptWhole(dec, pieces, out, signal) {
  let pos = 0
  const legacy = typeof dec.updateLength !== 'function'
  const put = (pt) => {
    if (pt.length > out.length - pos) throw isec.isecError('invalid_state', 'more plaintext than the object has')
    pt.copy(out, pos)
    pos += pt.length
  }
  const into = (need, call) => {
    if (out.length - pos >= need) {
      pos += call(out.subarray(pos))
      return
    }
    const tail = Buffer.allocUnsafe(need)
    const n = call(tail)
    if (n > out.length - pos) throw isec.isecError('invalid_state', 'more plaintext than the object shape has room for')
    tail.copy(out, pos, 0, n)
    tail.fill(0, 0, n)
    pos += n
  }
  try {
    for await (const piece of pieces) {
      throwIfAborted(signal)
      if (legacy) put(dec.update(piece))
      else into(dec.updateLength(piece.length), (o) => dec.updateInto(piece, o))
    }
    throwIfAborted(signal)
    if (legacy) put(dec.final())
    else into(dec.finalLength, (o) => dec.finalInto(o))
    return pos
  } catch (e) {
    out.fill(0, 0, pos)
    throw e
  }
}

/**
 * The plaintext of `source` (an SDK body, or a whole read's chunks in order) through core's
 * decryptor `ctx` (a native `Decryptor`), in pieces of about `PIECE` bytes: each chunk is
 * decrypted on this thread straight into the current piece, which is released when full.
 * As with `DecryptStream`, a piece holds only frames that
 * verified, and `final` (the end of what `ctx` decrypts) ends the stream.
 */
async function* decryptChunks(ctx, source, signal) {
  let piece = null
  let w = 0
  const room = function* (need) {
    if (piece !== null && piece.length - w >= need) return
    if (piece !== null && w > 0) yield piece.subarray(0, w)
    piece = Buffer.allocUnsafe(Math.max(PIECE, need))
    w = 0
  }
  try {
    if (source != null) {
      for await (const c of source) {
        throwIfAborted(signal)
        const chunk = toBuffer(c)
        yield* room(ctx.updateLength(chunk.length))
        w += ctx.updateInto(chunk, piece.subarray(w))
      }
    }
    throwIfAborted(signal)
    yield* room(ctx.finalLength)
    w += ctx.finalInto(piece.subarray(w))
    if (w > 0) yield piece.subarray(0, w)
  } finally {
    if (source != null && typeof source.destroy === 'function') source.destroy()
  }
}

/**
 * Core's streaming decryptor of a whole read `w`, or `null` for a previous-proxy object
 * whose seal is above what core decrypts as a stream (`limit_exceeded`: a single PUT over
 * 8 MiB, one GCM tag over it all).
 */
function streamingDecryptor(w) {
  try {
    return w.decryptor()
  } catch (e) {
    if (w.opened.format === 'legacy' && e && e.code === 'limit_exceeded') return null
    throw e
  }
}

/** Reads at most `limit` bytes of a body (an SDK stream), then lets the rest go. */
async function collectAtMost(body, limit) {
  if (body == null) return Buffer.alloc(0)
  const chunks = []
  let n = 0
  for await (const chunk of body) {
    chunks.push(chunk)
    n += chunk.length
    if (n >= limit) break
  }
  if (typeof body.destroy === 'function') body.destroy()
  const all = Buffer.concat(chunks, n)
  return all.length > limit ? all.subarray(0, limit) : all
}

function toBuffer(chunk) {
  if (typeof chunk === 'string') return Buffer.from(chunk)
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw invalid('stream chunks must be Buffer, Uint8Array or string')
}

/**
 * Plaintext to upload, read in pieces of a requested size: `take(n, into)` returns the next
 * (at most) `n` bytes, `ahead(n)` how many of the next `n` are there (reading a stream
 * that far), `size` the total when known. Buffers are sliced without copying; files are
 * read at offsets (into `into` when given, a buffer the caller reuses); streams are pulled
 * only as far as asked. Buffers and files can give a piece again: `reread(at, n)` (a new
 * buffer for a file), streams cannot (their pieces are the caller's to keep).
 */
async function openSource(body, contentLength) {
  if (body instanceof Uint8Array) {
    const buf = toBuffer(body)
    let pos = 0
    return {
      size: buf.length,
      sliced: true,
      async take(n) {
        const out = buf.subarray(pos, Math.min(buf.length, pos + n))
        pos += out.length
        return out
      },
      async ahead(n) {
        return Math.min(n, buf.length - pos)
      },
      async reread(at, n) {
        return buf.subarray(at, at + n)
      },
      async close() {},
    }
  }
  if (typeof body === 'string') {
    const fh = await fs.promises.open(body, 'r')
    let size
    try {
      size = (await fh.stat()).size
    } catch (e) {
      await fh.close()
      throw e
    }
    let pos = 0
    const readAt = async (at, len, into) => {
      const out = into && into.length >= len ? into.subarray(0, len) : Buffer.allocUnsafe(len)
      let got = 0
      while (got < len) {
        const { bytesRead } = await fh.read(out, got, len - got, at + got)
        if (bytesRead === 0) throw invalid(`${body} shrank while it was read`)
        got += bytesRead
      }
      return out
    }
    return {
      size,
      async take(n, into) {
        const len = Math.min(n, size - pos)
        const out = await readAt(pos, len, into)
        pos += len
        return out
      },
      async ahead(n) {
        return Math.min(n, size - pos)
      },
      reread: (at, n) => readAt(at, n),
      close: () => fh.close(),
    }
  }
  if (body != null && typeof body[Symbol.asyncIterator] === 'function') {
    const it = body[Symbol.asyncIterator]()
    const held = []
    let heldLen = 0
    let ended = false
    const fill = async (n) => {
      while (heldLen < n && !ended) {
        const { value, done } = await it.next()
        if (done) ended = true
        else {
          const b = toBuffer(value)
          if (b.length > 0) {
            held.push(b)
            heldLen += b.length
          }
        }
      }
    }
    return {
      size: contentLength,
      async ahead(n) {
        await fill(n)
        return Math.min(n, heldLen)
      },
      async take(n) {
        await fill(n)
        const want = Math.min(n, heldLen)
        const parts = []
        let got = 0
        while (got < want) {
          const b = held[0]
          if (b.length <= want - got) {
            parts.push(held.shift())
            got += b.length
          } else {
            parts.push(b.subarray(0, want - got))
            held[0] = b.subarray(want - got)
            got = want
          }
        }
        heldLen -= want
        return parts.length === 1 ? parts[0] : Buffer.concat(parts, want)
      },
      async close() {
        if (!ended && typeof it.return === 'function') await it.return()
      },
    }
  }
  throw invalid('Body must be a Buffer, a Uint8Array, a file path or a Readable')
}

function copySource(bucket, key, versionId) {
  const path = `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
  return versionId ? `${path}?versionId=${encodeURIComponent(versionId)}` : path
}

const pairsToObject = (pairs) => Object.fromEntries(pairs)

/** Thrown (and caught) inside the helper when a cached opened object no longer matches. */
const STALE = Symbol('isec.stale')

/** A 412 (an `If-Match` that no longer matches). */
function preconditionFailed(e) {
  return !!e && (e.name === 'PreconditionFailed' || (e.$metadata && e.$metadata.httpStatusCode === 412))
}

/** Whether two S3 user-metadata maps are equal. */
function sameMetadata(a, b) {
  const ka = Object.keys(a || {})
  if (ka.length !== Object.keys(b || {}).length) return false
  return ka.every((k) => b[k] === a[k])
}

/** Retries a part only for failures that another attempt can fix. */
function retryable(e, signal) {
  if (signal && signal.aborted) return false
  if (e && typeof e.family === 'string') return false // an isec error: deterministic
  if (e && (e.name === 'AbortError' || e.code === 'ABORT_ERR')) return false
  const status = e && e.$metadata && e.$metadata.httpStatusCode
  if (status === undefined) return true // no response: connection or timeout
  return status >= 500 || status === 408 || status === 429
}

/**
 * isec objects in S3 through an `@aws-sdk/client-s3` v3 `S3Client`.
 *
 * Uploads: at most `multipartThreshold` bytes (default: `partSize`) go in one PutObject as
 * a single-layout object; larger or unsized bodies go as a parts-layout object whose parts
 * are encrypted independently on the libuv pool and uploaded `concurrency` at a time, the
 * next part encrypted while they upload. Memory stays near `concurrency + 1` ciphertext
 * parts (reused from part to part, and kept a few seconds for the next upload) plus, for a
 * stream body, the plaintext of the parts in flight (a Buffer body is sent from in place,
 * a file is read into one reused part buffer) whatever the body's size.
 *
 * Whole gets make the GETs core's `WholeRead` plans (SPEC.md §12.4): the object's first
 * part, then ranged GETs pinned to its ETag, `concurrency` in flight, every piece decrypted
 * in order by one decryptor of the whole object while the others download. Ranged reads
 * keep a small cache of what objects' HEADs said (`openCache`, never a key), see
 * `getRange`.
 *
 * Retries: the SDK's own retries resend a part's ciphertext byte for byte (the same
 * encryption, never a new one under the same nonces). When those are exhausted on a
 * transient failure, the helper encrypts the part again (`partAttempts` in all): every
 * `encryptPart` draws a fresh 56-bit nonce prefix from core, so no nonce is used for two
 * different encryptions under the part's key (SPEC.md §5.1); that attempt's ciphertext goes
 * into a new buffer (the failed request may still hold the old one), from the plaintext
 * read again (a file) or kept (a stream). A failed upload is aborted.
 */
class IsecS3 {
  #client
  #ring
  #partSize
  #concurrency
  #threshold
  #frameSize
  #copyLimits
  #partAttempts
  #rate
  #openCache
  /**
   * What ranged reads learnt of objects (HEAD answer and core's ready step, no key), least
   * recently used first (see `#withOpened`).
   */
  #opened = new Map()
  /** Ciphertext part buffers kept between uploads (see `#spareBuffer`). */
  #spare = []
  #spareTimer = null

  /**
   * @param client an `S3Client`
   * @param keyring the `Keyring` that opens and creates envelopes
   * @param options `{ partSize = 8 MiB, concurrency = 4, multipartThreshold = partSize,
   *   frameSize, partAttempts = 3, copyLimits, reencryptRate, openCache = 64 }`;
   *   `openCache`: how many objects' HEADs ranged reads keep (0: none), see `getRange`
   */
  constructor(client, keyring, options = {}) {
    if (client == null || typeof client.send !== 'function') throw invalid('IsecS3 needs an S3Client')
    if (!(keyring instanceof isec.Keyring)) throw invalid('IsecS3 needs an isec Keyring')
    const {
      partSize = 8 * MiB,
      concurrency = 4,
      multipartThreshold = partSize,
      frameSize,
      partAttempts = 3,
      copyLimits,
      reencryptRate = 0,
      openCache = 64,
    } = options
    for (const [name, v, min] of [
      ['partSize', partSize, S3_MIN_PART],
      ['concurrency', concurrency, 1],
      ['multipartThreshold', multipartThreshold, 0],
      ['partAttempts', partAttempts, 1],
      ['reencryptRate', reencryptRate, 0],
      ['openCache', openCache, 0],
    ]) {
      if (!Number.isSafeInteger(v) || v < min) throw invalid(`${name} must be an integer of at least ${min}`)
    }
    this.#client = client
    this.#ring = keyring
    this.#partSize = partSize
    this.#concurrency = concurrency
    this.#threshold = multipartThreshold
    this.#frameSize = frameSize
    this.#partAttempts = partAttempts
    this.#copyLimits = copyLimits
    this.#rate = reencryptRate
    this.#openCache = openCache
  }

  /**
   * Forgets every object `getRange` and ranged `getObjectStream` remember (see
   * `openCache`): the next ranged read of each makes a HEAD again.
   */
  clearCache() {
    this.#opened.clear()
  }

  /** The wrapped client. */
  get client() {
    return this.#client
  }

  /** The keyring. */
  get keyring() {
    return this.#ring
  }

  #send(command, signal) {
    throwIfAborted(signal)
    return this.#client.send(command, signal ? { abortSignal: signal } : undefined)
  }

  /**
   * The complete user metadata of a new object under `envelope`, as core makes it for every
   * writer (the caller's keys, any key a format owns dropped, the envelope's added), checked
   * against S3's budget before anything is uploaded.
   */
  #objectMetadata(envelope, user) {
    const meta = pairsToObject(isec.objectMetadata(user || {}, envelope))
    const max = (this.#copyLimits && this.#copyLimits.metadataMax) ?? S3_METADATA_MAX
    const size = isec.metadataSize(meta)
    if (size > max) throw isec.isecError('limit_exceeded', `user metadata of ${size} bytes, over S3's ${max}`)
    return meta
  }

  /**
   * What reading an object needs, from its HEAD (or GET) answer: core's `ObjectOpen` names
   * each sidecar to fetch (a segment table, the previous proxy's metadata); this fetches it
   * and feeds back its body, or `null` when it does not exist. Returns the ready step
   * (`format` `isec`, `legacy` or `plaintext`). Unreadable metadata and broken or missing
   * required sidecars throw core's code.
   */
  async #openStep(Bucket, Key, metadata, storedLength, signal) {
    const o = new isec.ObjectOpen(Key, metadata || {}, storedLength)
    let step = o.next
    while (step.kind === 'fetch') step = o.feed(await this.#sidecar(Bucket, step, signal))
    return step
  }

  /** A sidecar's body, at most one byte past its cap (core refuses a longer one), or `null`. */
  async #sidecar(Bucket, step, signal) {
    const { GetObjectCommand } = s3()
    let r
    try {
      r = await this.#send(new GetObjectCommand({ Bucket, Key: step.key }), signal)
    } catch (e) {
      if (e && (e.name === 'NoSuchKey' || (e.$metadata && e.$metadata.httpStatusCode === 404))) return null
      throw e
    }
    return collectAtMost(r.Body, step.maxLength + 1)
  }

  /**
   * What reading a stored object takes, from its ready step: for `isec`, the envelope, key
   * and shape (a table-layout shape from its verified table); for `legacy`, the previous
   * proxy's object and its DEK under the keyring's legacy secret. A plaintext object is
   * refused unless `allowPlaintext` (then `null`); a legacy object always decrypts.
   */
  async #reader(Bucket, Key, step, storedLength, allowPlaintext = false) {
    switch (step.format) {
      case 'isec': {
        const { envelope, table } = step
        const key = await this.#ring.open(envelope)
        const shape = table ? isec.Shape.fromTable(key, table, storedLength) : isec.shapeFor(envelope, storedLength)
        return { format: 'isec', envelope, key, table, shape, kid: envelope.kid }
      }
      case 'legacy': {
        const object = step.legacy
        return { format: 'legacy', object, key: this.#ring.legacyKey(object), kid: object.kid ?? undefined }
      }
      default:
        if (allowPlaintext) return null
        throw isec.isecError(
          'not_encrypted',
          `s3://${Bucket}/${Key} is not encrypted; pass allowPlaintext to read it as stored`,
        )
    }
  }

  /** `#openStep` then `#reader`. */
  async #open(Bucket, Key, metadata, storedLength, signal, allowPlaintext = false) {
    const step = await this.#openStep(Bucket, Key, metadata, storedLength, signal)
    return this.#reader(Bucket, Key, step, storedLength, allowPlaintext)
  }

  // ----------------------------------------------------------------------------------------
  // Upload

  /**
   * Encrypts and uploads an object. `Body`: a Buffer or Uint8Array, a file path, or a
   * Readable (its length in `ContentLength` if known). Other PutObject / CreateMultipartUpload
   * fields (`ContentType`, `CacheControl`, `StorageClass`, ...) pass through.
   */
  async putObject(params) {
    const { Bucket, Key, Body, Metadata, ContentLength, signal, ...rest } = params || {}
    // Checksums of the caller's bytes would not match the ciphertext; the SDK sums what it sends.
    if (rest.ContentMD5 !== undefined) throw invalid('ContentMD5 would describe the plaintext, not the stored bytes')
    throwIfAborted(signal)
    const src = await openSource(Body, ContentLength)
    try {
      // Unknown length: read just past the threshold to learn whether one PUT suffices.
      const n = src.size ?? (await src.ahead(this.#threshold + 1))
      if (n <= this.#threshold) {
        const data = await src.take(n)
        if (data.length !== n || (await src.ahead(1)) !== 0) {
          throw invalid(`Body is not ContentLength (${n}) bytes long`)
        }
        return await this.#putSingle(Bucket, Key, data, Metadata, rest, signal)
      }
      return await this.#putParts(Bucket, Key, src, Metadata, rest, signal)
    } finally {
      await src.close()
    }
  }

  async #putSingle(Bucket, Key, plaintext, userMeta, rest, signal) {
    const opts = { declaredSize: plaintext.length }
    if (this.#frameSize !== undefined) opts.frameSize = this.#frameSize
    const { envelope, key } = await this.#ring.createEnvelope(opts)
    const Metadata = this.#objectMetadata(envelope, userMeta)
    const body = await isec.encrypt(key, plaintext, { signal })
    const { PutObjectCommand } = s3()
    const r = await this.#send(
      new PutObjectCommand({ ...rest, Bucket, Key, Body: body, ContentLength: body.length, Metadata }),
      signal,
    )
    return {
      ...pick(r, ['ETag', 'VersionId', '$metadata']),
      envelope,
      kid: envelope.kid,
      parts: 0,
      plaintextLength: plaintext.length,
      ciphertextLength: body.length,
    }
  }

  async #putParts(Bucket, Key, src, userMeta, rest, signal) {
    // Core picks the part size: `partSize` in whole frames, grown until a body of known
    // length fits S3's 10000 parts. A body of unknown length (size 0 here) keeps it, and
    // fails at part 10001.
    const opts = { fitParts: { size: src.size ?? 0, preferred: this.#partSize } }
    if (this.#frameSize !== undefined) opts.frameSize = this.#frameSize
    if (src.size !== undefined) opts.declaredSize = src.size
    const { envelope, key } = await this.#ring.createEnvelope(opts)
    const partSize = key.partSize
    const Metadata = this.#objectMetadata(envelope, userMeta)
    const { UploadPartCommand } = s3()

    // Parts of exactly `partSize`, the last one shorter; one byte of look-ahead tells
    // whether a part is the last, which its encryption must know (SPEC.md §6.2).
    //
    // Each part is encrypted (on the libuv pool) into a ciphertext buffer from a free list
    // while up to `concurrency` earlier parts upload, so at most `concurrency + 1` such
    // buffers exist, each of a full part's ciphertext length (core's shape). A buffer goes
    // back to the list only after its UploadPart succeeded with it (the server then has read
    // it whole); one whose request failed is left to the garbage collector, since the failed
    // request may still hold it. A file is read into one reused plaintext buffer. The
    // ciphertext buffers are kept for the next upload for a few seconds.
    const ctPart = isec.Shape.forPlaintext(envelope, src.size ?? 2 * partSize).segment(0).ctLen
    const UploadId = await this.#createUpload({ ...rest, Bucket, Key, Metadata }, signal)
    const parts = []
    const free = []
    const running = new Set()
    let ciphertextLength = 0
    let plaintextLength = 0
    let failure = null
    const inner = linked(signal)
    const fail = (e) => {
      if (!failure) {
        failure = { e }
        inner.abort(e)
      }
    }
    const upload = async (PartNumber, isLast, buf, n, again) => {
      let body = buf.subarray(0, n)
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await this.#send(
            new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body, ContentLength: body.length }),
            inner.signal,
          )
          parts.push({ PartNumber, ETag: r.ETag })
          ciphertextLength += body.length
          return attempt === 1
        } catch (e) {
          if (attempt >= this.#partAttempts || !retryable(e, inner.signal)) throw e
        }
        // A fresh encryption per attempt (core draws a new nonce prefix each time), into a
        // new buffer: the failed request may still be reading the old one.
        body = await isec.encryptPart(key, PartNumber, isLast, await again(), { signal: inner.signal })
      }
    }
    try {
      const plain = src.reread && !src.sliced ? Buffer.allocUnsafe(partSize) : undefined
      let offset = 0
      for (let PartNumber = 1; !failure; PartNumber++) {
        let data
        let isLast
        let buf
        let n
        try {
          data = await src.take(partSize, plain)
          isLast = (await src.ahead(1)) === 0
          buf = free.pop() ?? this.#spareBuffer(ctPart)
          n = await isec.encryptPartInto(key, PartNumber, isLast, data, buf, { signal: inner.signal })
        } catch (e) {
          fail(e)
          break
        }
        // `data` may be the reused plaintext buffer: a retry reads the part again.
        const at = offset
        const len = data.length
        const kept = src.reread ? null : data
        const again = kept ? async () => kept : () => src.reread(at, len)
        offset += len
        plaintextLength += len
        while (running.size >= this.#concurrency && !failure) await Promise.race(running)
        if (failure) break
        const p = upload(PartNumber, isLast, buf, n, again)
          .then((reusable) => {
            if (reusable) free.push(buf)
          }, fail)
          .finally(() => running.delete(p))
        running.add(p)
        if (isLast) break
      }
      await Promise.all(running)
      this.#keepSpare(free)
      if (failure) throw failure.e
      const r = await this.#complete(Bucket, Key, UploadId, parts, signal)
      return {
        ...pick(r, ['ETag', 'VersionId', '$metadata']),
        envelope,
        kid: envelope.kid,
        parts: parts.length,
        plaintextLength,
        ciphertextLength,
      }
    } catch (e) {
      await this.#abortUpload(Bucket, Key, UploadId)
      throw e
    } finally {
      inner.dispose()
    }
  }

  /**
   * A buffer of `size` bytes for a part's ciphertext: one an earlier upload gave back, or a
   * new one. Reusing them spares each upload the allocation (and first touch) of
   * `concurrency + 1` part buffers; they hold only ciphertext.
   */
  #spareBuffer(size) {
    const i = this.#spare.findIndex((b) => b.length === size)
    return i >= 0 ? this.#spare.splice(i, 1)[0] : Buffer.allocUnsafe(size)
  }

  /**
   * Keeps up to `concurrency + 1` part buffers for the next upload, for a few seconds: an
   * idle helper then lets them go.
   */
  #keepSpare(buffers) {
    for (const b of buffers) if (this.#spare.length <= this.#concurrency) this.#spare.push(b)
    if (this.#spareTimer) clearTimeout(this.#spareTimer)
    this.#spareTimer = setTimeout(() => {
      this.#spare.length = 0
      this.#spareTimer = null
    }, SPARE_MS)
    this.#spareTimer.unref()
  }

  /**
   * Starts a multipart upload. The request itself is not cancelled midway: a server that
   * created the upload must give us its id so that a failure can abort it.
   */
  async #createUpload(input, signal) {
    const { CreateMultipartUploadCommand } = s3()
    throwIfAborted(signal)
    const created = await this.#client.send(new CreateMultipartUploadCommand(input))
    try {
      throwIfAborted(signal)
    } catch (e) {
      await this.#abortUpload(input.Bucket, input.Key, created.UploadId)
      throw e
    }
    return created.UploadId
  }

  /** Completes an upload: the point of no return, so a signal is checked before, not during. */
  #complete(Bucket, Key, UploadId, parts, signal) {
    const { CompleteMultipartUploadCommand } = s3()
    throwIfAborted(signal)
    parts.sort((a, b) => a.PartNumber - b.PartNumber)
    return this.#client.send(
      new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
    )
  }

  async #abortUpload(Bucket, Key, UploadId) {
    const { AbortMultipartUploadCommand } = s3()
    try {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }))
    } catch {
      // The upload's own failure is the one to report; a lifecycle rule reaps leftovers.
    }
  }

  /**
   * Uploads `total` bytes arriving from `chunks` (already isec ciphertext) as they are:
   * one PutObject when they fit a part, else a multipart upload of `partSize` pieces (S3
   * concatenates them into the same bytes). Used for re-encrypted copies, whose job's
   * `targetPartLength` makes each S3 part one part of the new object.
   */
  async #putBytes(Bucket, Key, total, chunks, Metadata, rest, signal, partSize, multipart = false) {
    const { PutObjectCommand, UploadPartCommand } = s3()
    const src = await openSource(chunks, total)
    try {
      if (total <= partSize && !multipart) {
        const body = await src.take(total)
        if (body.length !== total || (await src.ahead(1)) !== 0) {
          throw isec.isecError('invalid_state', `re-encryption produced other than ${total} bytes`)
        }
        return await this.#send(
          new PutObjectCommand({ ...rest, Bucket, Key, Body: body, ContentLength: total, Metadata }),
          signal,
        )
      }
      const UploadId = await this.#createUpload({ ...rest, Bucket, Key, Metadata }, signal)
      const parts = []
      const inner = linked(signal)
      let sent = 0
      let number = 0
      try {
        await bounded(
          this.#concurrency,
          async () => {
            const data = await src.take(partSize)
            if (data.length === 0) return null
            sent += data.length
            return { PartNumber: ++number, data }
          },
          async ({ PartNumber, data }) => {
            const r = await this.#send(
              new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: data, ContentLength: data.length }),
              inner.signal,
            )
            parts.push({ PartNumber, ETag: r.ETag })
          },
          (reason) => inner.abort(reason),
        )
        if (sent !== total) throw isec.isecError('invalid_state', `re-encryption produced ${sent} of ${total} bytes`)
        return await this.#complete(Bucket, Key, UploadId, parts, signal)
      } catch (e) {
        await this.#abortUpload(Bucket, Key, UploadId)
        throw e
      } finally {
        inner.dispose()
      }
    } finally {
      await src.close()
    }
  }

  // ----------------------------------------------------------------------------------------
  // Download

  /**
   * The object's metadata and what it is, without a key: `format` (`isec`, `legacy`,
   * `plaintext`, or `unreadable` with `error`, core's code), `kid`, `plaintextLength`; for
   * isec objects `envelope` and `info` (`Envelope#inspect` with the stored length), for
   * previous-proxy objects `legacyLayout` (`single`, `streamed`, `framed`, `staged`). The
   * sidecars core asks for are fetched (a plain-looking object is probed for the previous
   * proxy's); a missing required or a broken sidecar throws core's code.
   */
  async headObject(params) {
    const { Bucket, Key, VersionId, signal } = params || {}
    const { HeadObjectCommand } = s3()
    const h = await this.#send(new HeadObjectCommand({ Bucket, Key, VersionId }), signal)
    const out = { ...pick(h, OUTPUT_FIELDS), ContentLength: h.ContentLength }
    let step
    try {
      step = await this.#openStep(Bucket, Key, h.Metadata, h.ContentLength, signal)
    } catch (e) {
      // Metadata that does not parse is an answer here; a broken sidecar is an error.
      const cls = isec.classifyMetadata(h.Metadata || {})
      if (cls.format !== 'unreadable') throw e
      return { ...out, format: 'unreadable', kid: cls.kid, error: cls.error }
    }
    Object.defineProperty(out, OPENED, { value: step })
    out.format = step.format
    if (step.format === 'isec') {
      out.envelope = step.envelope
      out.kid = step.envelope.kid
      out.info = step.envelope.inspect(h.ContentLength)
      out.plaintextLength = out.info.plaintextLength
    } else if (step.format === 'legacy') {
      out.kid = step.legacy.kid ?? undefined
      out.legacyLayout = step.legacy.layout
      out.plaintextLength = step.legacy.plaintextLength
    } else {
      out.plaintextLength = h.ContentLength
    }
    return out
  }

  /** The ready step of a `headObject` result (fetched again for a foreign one). */
  #headStep(Bucket, Key, h, signal) {
    return h[OPENED] ?? this.#openStep(Bucket, Key, h.Metadata, h.ContentLength, signal)
  }

  /**
   * Downloads and decrypts a whole object into a Buffer: all or nothing. isec objects with
   * the keyring's keys, previous-proxy objects with its legacy secrets. Plaintext objects
   * are refused unless `allowPlaintext` (which never returns a previous-proxy object's
   * stored bytes).
   */
  async getObject(params) {
    const signal = params && params.signal
    try {
      return await this.#getObject(params)
    } catch (e) {
      // Aborting a request mid-body surfaces as the body's own error (ECONNRESET): the
      // caller's abort is the reason.
      if (signal && signal.aborted && !(e && (e.code === 'ABORT_ERR' || e.name === 'AbortError'))) throwIfAborted(signal)
      throw e
    }
  }

  async #getObject(params) {
    const { Bucket, Key, VersionId, IfMatch, signal, allowPlaintext = false } = params || {}
    const w = await this.#wholeRead({ Bucket, Key, VersionId, IfMatch, signal, allowPlaintext })
    const { r, opened, plan } = w
    let Body
    let dec
    try {
      if (opened === null) {
        // A plaintext object the caller accepts: its stored bytes.
        Body = Buffer.allocUnsafe(plan.storedLength)
        let at = 0
        for await (const piece of w.pieces()) {
          if (at + piece.length > Body.length) throw invalid('more bytes than the object is long')
          piece.copy(Body, at)
          at += piece.length
        }
        if (at !== Body.length) throw isec.isecError('truncated', `s3://${Bucket}/${Key}: ${at} of ${Body.length} bytes`)
      } else if ((dec = streamingDecryptor(w)) === null) {
        // A previous-proxy seal above core's streaming bound (a single PUT over 8 MiB): its
        // one GCM tag covers it all, so the stored bytes, gathered in order, are decrypted
        // in one call (core's one-shot decryption of the whole object).
        const stored = Buffer.allocUnsafe(plan.storedLength)
        let at = 0
        for await (const piece of w.pieces()) {
          if (at + piece.length > stored.length) throw invalid('more bytes than the object is long')
          piece.copy(stored, at)
          at += piece.length
        }
        Body = await isec.legacyDecrypt(opened.key, opened.object, stored.subarray(0, at), { signal })
      } else {
        Body = Buffer.allocUnsafe(opened.plaintextLength)
        const n = await decryptWhole(dec, w.pieces(), Body, signal)
        if (n !== Body.length) throw isec.isecError('invalid_state', `${n} of ${Body.length} plaintext bytes`)
      }
    } finally {
      w.close()
    }
    const kid = opened ? opened.kid : undefined
    const format = opened ? opened.format : 'plaintext'
    return { ...pick(r, OUTPUT_FIELDS), Body, ContentLength: Body.length, kid, format }
  }

  /**
   * Opens an object for a whole read (SPEC.md §12.4): with `concurrency` 1 one GET of the
   * whole object, else a GET of its first part (`firstPartNumber`; a 416 is an empty
   * object, read by a plain GET), whose headers are the
   * object's metadata and, through its Content-Range, its stored size; then core's
   * `WholeRead` says which GETs follow. The object is opened (sidecars, key) from that first
   * response as `#open` does, with the stored size the plan gives. A caller's `IfMatch` goes
   * on the first request; the ranged GETs are pinned to the first response's ETag, so an
   * object replaced mid-read fails with the server's 412.
   *
   * Returns `{ r, plan, opened, pieces, decryptor, close }`: `pieces()` yields the stored
   * bytes in order as the socket's chunks (the first response's `firstLength` bytes as they
   * arrive, then each range's once it arrived whole, `concurrency` ranged GETs in flight,
   * started before the first body is read: about `concurrency + 1` parts held);
   * `decryptor()` is core's streaming decryptor of the whole stored object (isec in any
   * layout, or a previous-proxy object); `close()` lets go of what was not read.
   */
  async #wholeRead({ Bucket, Key, VersionId, IfMatch, signal, allowPlaintext = false }) {
    const { GetObjectCommand } = s3()
    let r
    try {
      // One connection: the whole object in one streamed GET; more: its first part.
      const part = isec.firstPartNumber(this.#concurrency)
      const first = part == null ? {} : { PartNumber: part }
      r = await this.#send(new GetObjectCommand({ Bucket, Key, VersionId, IfMatch, ...first }), signal)
    } catch (e) {
      if (!(e && e.$metadata && e.$metadata.httpStatusCode === isec.EMPTY_OBJECT_STATUS)) throw e
      r = await this.#send(new GetObjectCommand({ Bucket, Key, VersionId, IfMatch }), signal)
    }
    const drop = () => {
      if (r.Body && typeof r.Body.destroy === 'function') r.Body.destroy()
    }
    let plan
    let opened
    try {
      plan = new isec.WholeRead(r.ContentLength ?? 0, r.ContentRange ?? null, this.#partSize, this.#concurrency)
      opened = await this.#open(Bucket, Key, r.Metadata, plan.storedLength, signal, allowPlaintext)
    } catch (e) {
      drop()
      throw e
    }
    if (opened !== null) {
      opened.plaintextLength = opened.format === 'legacy' ? opened.object.plaintextLength : opened.shape.plaintextLength
    }
    const whole = plan.firstLength === r.ContentLength
    const ETag = r.ETag
    const where = `s3://${Bucket}/${Key}`
    const inner = linked(signal)
    // A ranged GET's body is kept as the socket's own chunks (no copy), then decrypted
    // chunk by chunk when its turn comes.
    const fetch = async ([a, b]) => {
      const g = await this.#send(
        new GetObjectCommand({ Bucket, Key, VersionId, IfMatch: ETag, Range: `bytes=${a}-${b - 1}` }),
        inner.signal,
      )
      const chunks = await readChunks(g.Body, b - a)
      if (chunks.got !== b - a) throw isec.isecError('truncated', `${where}: ${chunks.got} of bytes ${a}-${b - 1}`)
      return chunks
    }
    const concurrency = this.#concurrency
    async function* pieces() {
      const ranges = plan.ranges()
      const queue = []
      let next = 0
      // The first failure of a ranged GET (a 412, say) stops the others now, and is the one
      // reported, not the aborts it caused.
      let failure = null
      const start = () => {
        while (queue.length < concurrency && next < ranges.length) {
          const p = fetch(ranges[next++])
          p.catch((e) => {
            if (failure === null) {
              failure = e
              inner.abort(e)
            }
          })
          queue.push(p)
        }
      }
      try {
        start()
        // Only `firstLength` bytes of the first response: the rest of a large single PUT is
        // let go.
        let received = 0
        const first = plan.firstLength
        if (r.Body != null && first > 0) {
          for await (const c of r.Body) {
            throwIfAborted(inner.signal)
            let chunk = toBuffer(c)
            if (received + chunk.length > first) {
              if (whole) throw isec.isecError('trailing_data', `${where}: longer than its Content-Length ${first}`)
              chunk = chunk.subarray(0, first - received)
            }
            received += chunk.length
            if (chunk.length > 0) yield chunk
            if (received === first) break
          }
        }
        drop()
        if (received !== first) throw isec.isecError('truncated', `${where}: ${received} of bytes 0-${first - 1}`)
        while (queue.length > 0) {
          const { list } = await queue.shift()
          start()
          for (let i = 0; i < list.length; i++) {
            const chunk = list[i]
            list[i] = null
            yield chunk
          }
        }
      } catch (e) {
        throw failure ?? e
      } finally {
        drop()
        if (queue.length > 0 || next < ranges.length) inner.abort(isec.isecError('ABORT_ERR'))
        inner.dispose()
      }
    }
    const decryptor = () =>
      opened.format === 'legacy'
        ? new isec.LegacyDecryptor(opened.key, opened.object)
        : isec.Decryptor.withShape(opened.key, opened.shape)
    const close = () => {
      drop()
      inner.dispose()
    }
    return { r, plan, opened, pieces, decryptor, close }
  }

  /** The plan of plaintext `[start, end)` of an opened object: what to GET, what it yields. */
  #rangePlan(opened, start, end) {
    if (opened.format === 'legacy') {
      const n = opened.object.plaintextLength
      const plan = opened.object.planRange(Math.min(start, n), Math.min(end, n))
      return { plan, range: [plan.ptStart, plan.ptStart + plan.len], plaintextLength: n }
    }
    const plan = opened.shape.mapRange(start, end)
    return { plan, range: [plan.ptStart, plan.ptStart + plan.len], plaintextLength: opened.shape.plaintextLength }
  }

  /**
   * Downloads an object as a Readable of plaintext: for an isec object, core's decryptor over
   * the response body, released in pieces of about 2 MiB (with `streamOptions`, a
   * `DecryptStream` with those options instead); for a previous-proxy
   * object, a `LegacyDecryptStream` fed by the response body. Frames are
   * released as they verify: a consumer that must not act on a prefix of a damaged object
   * waits for `end` (an error ends the stream instead). With `start` and/or `end`, only the
   * ciphertext core's range plan names is fetched, with the opened object cached and the
   * GET pinned to its ETag as for `getRange`.
   */
  async getObjectStream(params) {
    const { Bucket, Key, VersionId, IfMatch, signal, start, end, streamOptions } = params || {}
    const { GetObjectCommand } = s3()
    const ranged = start !== undefined || end !== undefined
    let r
    let opened
    let range
    if (ranged) {
      // As `getRange`: the opened object cached, its GET pinned to the ETag.
      const got = await this.#withOpened(Bucket, Key, VersionId, signal, async ({ h, opened: o }, cached) => {
        const p = this.#rangePlan(o, start ?? 0, end ?? Infinity)
        if (p.plan.httpRange == null) return { h, o, range: p.range, r: null }
        const g = await this.#send(
          new GetObjectCommand({ Bucket, Key, VersionId, Range: p.plan.httpRange, IfMatch: h.ETag }),
          signal,
        )
        if (cached && !sameMetadata(g.Metadata, h.Metadata)) {
          if (g.Body && typeof g.Body.destroy === 'function') g.Body.destroy()
          throw STALE
        }
        return { h, o, range: p.range, r: g }
      })
      opened = got.o
      range = got.range
      if (got.r === null) {
        return { ...pick(got.h, OUTPUT_FIELDS), Body: Readable.from([]), kid: opened.kid, range }
      }
      r = got.r
    }
    let dec
    if (!ranged) {
      // A whole read (SPEC.md §12.4): every piece in order into one decryptor of the object.
      const w = await this.#wholeRead({ Bucket, Key, VersionId, IfMatch, signal })
      r = w.r
      opened = w.opened
      if (opened.format === 'isec' && streamOptions === undefined) {
        dec = Readable.from(decryptChunks(w.decryptor(), w.pieces(), signal), { objectMode: false })
      } else {
        dec =
          opened.format === 'legacy'
            ? new isec.LegacyDecryptStream(opened.key, opened.object, { ...streamOptions })
            : new isec.DecryptStream(opened.key, { ...streamOptions, shape: opened.shape })
        pipeline(Readable.from(w.pieces(), { objectMode: false }), dec, () => {})
      }
      dec.once('close', w.close)
    } else if (opened.format === 'isec' && streamOptions === undefined) {
      const ctx = isec.Decryptor.forRange(opened.key, opened.shape, range[0], range[1])
      dec = Readable.from(decryptChunks(ctx, r.Body, signal), { objectMode: false })
    } else {
      dec =
        opened.format === 'legacy'
          ? new isec.LegacyDecryptStream(opened.key, opened.object, { ...streamOptions, range })
          : new isec.DecryptStream(opened.key, { ...streamOptions, shape: opened.shape, range })
      pipeline(r.Body, dec, () => {})
    }
    if (signal) {
      const onAbort = () => {
        try {
          throwIfAborted(signal)
        } catch (e) {
          dec.destroy(e)
        }
      }
      signal.addEventListener('abort', onAbort, { once: true })
      dec.once('close', () => signal.removeEventListener('abort', onAbort))
    }
    return { ...pick(r, OUTPUT_FIELDS), Body: dec, kid: opened.kid, range }
  }

  /**
   * Plaintext `[start, end)` (end exclusive, clamped to the object; `end` may be omitted
   * for "to the end"). Fetches only the frames (or, for a previous-proxy object, the seals)
   * core's range plan names, in one GET with `If-Match` on the object's ETag.
   *
   * What the GET needs (the object's format, envelope and shape) comes from a HEAD: `head`
   * (a previous `headObject` result) when given; else what this helper learnt of the
   * object for an earlier ranged read, kept in a small cache (`openCache` objects, least
   * recently used dropped; key: bucket, key, version id: the HEAD's answer and what its
   * opening found, never a key); else a new HEAD, whose result is then cached. The key is
   * opened from the keyring for every read, so a key disabled or removed since is refused
   * at once. A cached object's GET is pinned to its ETag: when the object was replaced the
   * server answers 412 (or, with the same bytes under other metadata, the response's
   * metadata differs, or the key fails to decrypt), and the entry is dropped and the read
   * done once more after a fresh HEAD, so a read never returns an older object's bytes.
   */
  async getRange(params) {
    const { Bucket, Key, VersionId, start = 0, end = Infinity, signal, head } = params || {}
    if (head) {
      const step = await this.#headStep(Bucket, Key, head, signal)
      const opened = await this.#reader(Bucket, Key, step, head.ContentLength)
      return this.#rangeRead({ h: head, opened }, Bucket, Key, VersionId, start, end, signal, false)
    }
    return this.#withOpened(Bucket, Key, VersionId, signal, (o, cached) =>
      this.#rangeRead(o, Bucket, Key, VersionId, start, end, signal, cached),
    )
  }

  /** One ranged read of an opened object (`{ h, opened }`), as `getRange` describes. */
  async #rangeRead({ h, opened }, Bucket, Key, VersionId, start, end, signal, cached) {
    const { plan, range, plaintextLength } = this.#rangePlan(opened, start, end)
    const base = { ...pick(h, OUTPUT_FIELDS), kid: opened.kid, range, plaintextLength }
    if (plan.httpRange == null) return { ...base, Body: Buffer.alloc(0) }
    const { GetObjectCommand } = s3()
    const r = await this.#send(
      new GetObjectCommand({ Bucket, Key, VersionId, Range: plan.httpRange, IfMatch: h.ETag }),
      signal,
    )
    if (cached && !sameMetadata(r.Metadata, h.Metadata)) {
      if (r.Body && typeof r.Body.destroy === 'function') r.Body.destroy()
      throw STALE
    }
    const fetched = await collect(r.Body, plan.ctEnd - plan.ctStart)
    const Body =
      opened.format === 'legacy'
        ? isec.legacyDecryptRangeSync(opened.key, opened.object, range[0], range[1], fetched)
        : fetched.length <= SYNC_RANGE
          ? isec.decryptRangeSync(opened.key, opened.shape, range[0], range[1], fetched)
          : await isec.decryptRange(opened.key, opened.shape, range[0], range[1], fetched, { signal })
    return { ...base, ...pick(r, OUTPUT_FIELDS), Body }
  }

  /**
   * Runs `read({ h, opened }, cached)` on the object as a cached earlier HEAD described it
   * (its HEAD answer and core's ready step: metadata, envelope, table, previous-proxy
   * object, sidecar, ETag; never a key, which `#reader` opens from the keyring each time);
   * when that read finds the object changed (412 on its `If-Match`, other metadata, or an
   * isec error with the cached key), drops the entry and runs it once more on a fresh
   * HEAD (then cached). Without a cached entry, only the latter.
   */
  async #withOpened(Bucket, Key, VersionId, signal, read) {
    const id = JSON.stringify([Bucket, Key, VersionId ?? null])
    const hit = this.#opened.get(id)
    if (hit) {
      this.#opened.delete(id)
      try {
        // The key is opened from the keyring for every read: the cache holds none.
        const opened = await this.#reader(Bucket, Key, hit.step, hit.h.ContentLength)
        const out = await read({ h: hit.h, opened }, true)
        this.#remember(id, hit)
        return out
      } catch (e) {
        if (!(e === STALE || preconditionFailed(e) || (e && typeof e.family === 'string' && e.code !== 'ABORT_ERR'))) {
          this.#remember(id, hit)
          throw e
        }
      }
    }
    const h = await this.headObject({ Bucket, Key, VersionId, signal })
    const step = await this.#headStep(Bucket, Key, h, signal)
    const fresh = { h, step }
    this.#remember(id, fresh)
    return read({ h, opened: await this.#reader(Bucket, Key, step, h.ContentLength) }, false)
  }

  #remember(id, entry) {
    if (this.#openCache === 0) return
    this.#opened.delete(id)
    this.#opened.set(id, entry)
    while (this.#opened.size > this.#openCache) this.#opened.delete(this.#opened.keys().next().value)
  }

  // ----------------------------------------------------------------------------------------
  // Copy and rewrap

  /**
   * Copies `SourceBucket/SourceKey` to `Bucket/Key` the way core says (SPEC.md §12, §12.2):
   * the copy decision (`decideCopy`) from the source's HEAD and the sidecar its opening
   * found, then exactly the S3 requests `copySteps` lists, in order: a sidecar copied first
   * where the plan says, CopyObject (COPY or REPLACE, pinned to the source's ETag), or a
   * multipart upload of UploadPartCopy over the plan's ranges, or download, decrypt,
   * encrypt, upload (`reencrypt`: `rotateDek`, `migrateLegacy`, another kid for a
   * previous-proxy object, or `requireEncryption` for a plaintext source). When a step
   * fails, its undo requests are sent (best effort) and the failure is rethrown. A REPLACE
   * or a new upload carries the source's content headers and storage class; the caller's
   * own win.
   */
  async copyObject(params) {
    const {
      SourceBucket,
      SourceKey,
      SourceVersionId,
      Bucket,
      Key,
      MetadataDirective = 'COPY',
      Metadata,
      targetKid,
      rotateDek = false,
      migrateLegacy = false,
      requireEncryption = false,
      signal,
      ...rest
    } = params || {}
    const { HeadObjectCommand } = s3()
    const h = await this.#send(
      new HeadObjectCommand({ Bucket: SourceBucket, Key: SourceKey, VersionId: SourceVersionId }),
      signal,
    )
    const { plan, step } = await this.#plan(SourceBucket, SourceKey, h, {
      MetadataDirective,
      Metadata,
      targetKid,
      rotateDek,
      migrateLegacy,
      requireEncryption,
      signal,
    })
    return this.#execute(plan, step, h, { SourceBucket, SourceKey, SourceVersionId, Bucket, Key, signal, rest })
  }

  /**
   * Puts an object's envelope under `newKid` (default: the keyring's active key) in place:
   * a CopyObject of the object onto itself with REPLACE and the rewrapped envelope. No
   * object bytes move; user metadata and the content headers are kept. An object already
   * under that key is left alone (`rewrapped: false`).
   */
  async rewrap(params) {
    const { Bucket, Key, VersionId, newKid, signal } = params || {}
    const { HeadObjectCommand } = s3()
    const kid = newKid ?? this.#ring.activeKid
    if (kid == null) throw isec.isecError('key_not_active', 'the keyring has no active key')
    const h = await this.#send(new HeadObjectCommand({ Bucket, Key, VersionId }), signal)
    const { plan, step } = await this.#plan(Bucket, Key, h, { MetadataDirective: 'COPY', targetKid: kid, signal })
    if (plan.action === 'reencrypt') {
      // Another kid for a previous-proxy object means new ciphertext: a copy, not a rewrap.
      throw invalid(`s3://${Bucket}/${Key} has no isec envelope to rewrap; migrate it with copyObject`)
    }
    if (!plan.rewrapped) {
      return { action: 'none', plan, rewrapped: false, kid: isec.classifyMetadata(h.Metadata || {}).kid }
    }
    return this.#execute(plan, step, h, {
      SourceBucket: Bucket,
      SourceKey: Key,
      SourceVersionId: VersionId,
      Bucket,
      Key,
      signal,
      rest: {},
    })
  }

  /**
   * Re-encrypts a previous-proxy object in place into an isec object under the keyring's
   * active key: core's copy decision with `migrateLegacy` onto the same key, executed as
   * core's `migrateSteps` lists it (SPEC.md §12.3): the re-encryption (GET pinned to the
   * HEAD's ETag, core's re-encryption job, one PutObject or a multipart upload completed
   * only after every source seal verified), then `VerifyIsec` (HEAD, isec under the active
   * kid with the ETag the upload returned, decrypted whole pinned to it, of the source's
   * plaintext length), then the deletion of the sidecar the opening found when core says
   * it is the object's own. The source's user metadata (format keys removed by core) and
   * content headers are kept. A sidecar core keeps (a staged upload's generation sidecar;
   * native copies may share it) is reported as `sidecarLeft`. An isec object is left alone (`migrated: false`);
   * a plaintext one rejects with `not_encrypted`. Any failure before the new object is in
   * place leaves the original object and its sidecar as they were.
   *
   * Resolves to `{ migrated, kid, plaintextLength, sidecarDeleted, sidecarLeft, ETag,
   * VersionId }`.
   */
  async migrate(Bucket, Key, options = {}) {
    const { signal } = options || {}
    if (typeof Bucket !== 'string' || typeof Key !== 'string') throw invalid('migrate(bucket, key) needs two strings')
    const { HeadObjectCommand } = s3()
    const h = await this.#send(new HeadObjectCommand({ Bucket, Key }), signal)
    const step = await this.#openStep(Bucket, Key, h.Metadata, h.ContentLength, signal)
    if (step.format === 'isec') {
      return {
        migrated: false,
        kid: step.envelope.kid,
        plaintextLength: step.envelope.inspect(h.ContentLength).plaintextLength,
        sidecarDeleted: null,
        sidecarLeft: null,
        ETag: h.ETag,
        VersionId: h.VersionId,
      }
    }
    if (step.format !== 'legacy') {
      throw isec.isecError('not_encrypted', `s3://${Bucket}/${Key} is not encrypted: nothing to migrate`)
    }
    const kid = this.#ring.activeKid
    if (kid == null) throw isec.isecError('key_not_active', 'the keyring has no active key')
    const plaintextLength = step.legacy.plaintextLength
    // The legacy key must open the object before anything is written.
    this.#ring.legacyKey(step.legacy)
    const { plan } = await this.#plan(Bucket, Key, h, { MetadataDirective: 'COPY', migrateLegacy: true, signal })
    // Core's steps: the re-encryption onto the object itself, `VerifyIsec` (the new object
    // read back under the active kid), then the deletion of the sidecar its opening found
    // when it is the object's own (SPEC.md §12.3).
    const migration = isec.migrateSteps(
      plan,
      { bucket: Bucket, key: Key },
      h.Metadata || {},
      step.legacySidecar ?? null,
      kid,
      plaintextLength,
    )
    const r = await this.#execute(
      plan,
      step,
      h,
      { SourceBucket: Bucket, SourceKey: Key, Bucket, Key, signal, rest: {} },
      migration.steps,
    )
    return {
      migrated: true,
      kid,
      plaintextLength,
      sidecarDeleted: migration.sidecarDeleted ?? null,
      sidecarLeft: migration.sidecarKept ?? null,
      ETag: r.verified.ETag,
      VersionId: r.verified.VersionId,
      reason: r.reason,
    }
  }

  /**
   * Core's copy decision. The opening of the source (its sidecars fetched as core asks)
   * says whether it has a sidecar; metadata that does not parse is left to the decision
   * (a byte copy preserves it).
   */
  async #plan(SourceBucket, SourceKey, h, o) {
    const meta = h.Metadata || {}
    let step = null
    try {
      step = await this.#openStep(SourceBucket, SourceKey, meta, h.ContentLength, o.signal)
    } catch (e) {
      if (isec.classifyMetadata(meta).format !== 'unreadable') throw e
    }
    const sourceSidecar = !!step && (step.tableSidecar != null || step.legacySidecar != null)
    const request = {
      sourceMetadata: meta,
      sourceSize: h.ContentLength,
      sourceSidecar,
      directive: o.MetadataDirective,
      newMetadata: o.Metadata || {},
      rotateDek: !!o.rotateDek,
      migrateLegacy: !!o.migrateLegacy,
      requireEncryption: !!o.requireEncryption,
    }
    if (o.targetKid != null) request.targetKid = o.targetKid
    if (this.#copyLimits) request.limits = this.#copyLimits
    // A key change rewraps the envelope first (external keys answer asynchronously).
    const rewrap = this.#ring && isec.beginCopyRewrap(request, this.#ring)
    if (rewrap) request.rewrapped = await this.#ring.withExternal(rewrap)
    const decide = () => isec.decideCopy(request, this.#ring)
    const plan = decide()
    if (!step || !step.table || plan.action !== 'part_copy') return { plan, step }
    // Copied in parts: with the object's shape (from its verified table) core puts every
    // part boundary on a frame boundary.
    request.sourceShape = (await this.#reader(SourceBucket, SourceKey, step, h.ContentLength)).shape
    return { plan: decide(), step }
  }

  /**
   * Sends the requests `copySteps` lists for `plan` (or the `given` steps, e.g.
   * `migrateSteps`'), in order; consecutive UploadPartCopy steps go `concurrency` at a time;
   * a `VerifyIsec` step checks the object the previous step wrote. A failed step's undo requests are sent, best effort,
   * before its failure is rethrown.
   */
  async #execute(plan, step, h, p, given = null) {
    const { SourceBucket, SourceKey, SourceVersionId, Bucket, Key, signal, rest } = p
    const source = { bucket: SourceBucket, key: SourceKey }
    const dest = { bucket: Bucket, key: Key }
    const newHeaders = CARRIED_HEADERS.some((n) => rest[n] !== undefined)
    const steps = given ?? isec.copySteps(plan, source, h.Metadata || {}, dest, { newHeaders })
    const isObject = (o) => o.bucket === Bucket && o.key === Key
    const fromObject = (o) => o.bucket === SourceBucket && o.key === SourceKey
    const src = (o) => copySource(o.bucket, o.key, fromObject(o) ? SourceVersionId : undefined)
    // The source's system headers a REPLACE or a new object would lose; the caller's win.
    const carried = { ...pick(h, CARRIED_HEADERS), ...pick(h, ['StorageClass']), ...rest }
    // `etag`: what the last Reencrypt step wrote (a `VerifyIsec` step requires it).
    const state = { UploadId: undefined, parts: [], etag: undefined, verified: undefined }
    let result = null
    const extra = {}
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]
      if (s.op === 'UploadPartCopy') {
        // A run of part copies: in parallel, then its first failure undoes.
        let j = i
        while (j < steps.length && steps[j].op === 'UploadPartCopy') j++
        const run = steps.slice(i, j)
        let failed = null
        const inner = linked(signal)
        let k = 0
        try {
          await bounded(
            this.#concurrency,
            async () => (k < run.length ? run[k++] : null),
            async (q) => {
              try {
                await this.#request(q, h, state, { src, isObject, carried, rest, signal: inner.signal })
              } catch (e) {
                if (!failed) failed = q
                throw e
              }
            },
            (reason) => inner.abort(reason),
          )
        } catch (e) {
          await this.#undo((failed || run[0]).undo, state)
          throw e
        } finally {
          inner.dispose()
        }
        i = j - 1
        continue
      }
      try {
        const r = await this.#request(s, h, state, { src, isObject, carried, rest, signal, plan, step, SourceVersionId })
        if (s.op === 'Reencrypt') {
          Object.assign(extra, r.extra)
          state.etag = r.output && r.output.ETag
        }
        if (s.op !== 'CreateMultipartUpload' && s.op !== 'VerifyIsec' && isObject(s.dest || s.object || {})) {
          result = r.output
        }
      } catch (e) {
        await this.#undo(s.undo, state)
        throw e
      }
    }
    const out = { ...pick(result || {}, ['ETag', 'VersionId', '$metadata']), action: plan.action, plan }
    if (state.verified) out.verified = state.verified
    if (plan.action === 'reencrypt') return { ...out, reason: plan.reason, ...extra }
    if (plan.action === 'part_copy') return { ...out, rewrapped: plan.rewrapped, parts: state.parts.length }
    return { ...out, rewrapped: plan.rewrapped }
  }

  /** One request of a copy step. */
  async #request(q, h, state, o) {
    const { CopyObjectCommand, UploadPartCopyCommand, DeleteObjectCommand } = s3()
    const { src, isObject, carried, rest, signal } = o
    switch (q.op) {
      case 'CopyObject': {
        const input = {
          ...(isObject(q.dest) ? (q.headers === 'carried' ? carried : rest) : {}),
          Bucket: q.dest.bucket,
          Key: q.dest.key,
          CopySource: src(q.source),
          MetadataDirective: q.directive,
        }
        if (q.ifMatch) input.CopySourceIfMatch = h.ETag
        if (q.directive === 'REPLACE') input.Metadata = pairsToObject(q.metadata)
        const r = await this.#send(new CopyObjectCommand(input), signal)
        return { output: r.CopyObjectResult }
      }
      case 'CreateMultipartUpload':
        state.UploadId = await this.#createUpload(
          { ...carried, Bucket: q.dest.bucket, Key: q.dest.key, Metadata: pairsToObject(q.metadata) },
          signal,
        )
        return {}
      case 'UploadPartCopy': {
        const [s, e] = q.range
        const r = await this.#send(
          new UploadPartCopyCommand({
            Bucket: q.dest.bucket,
            Key: q.dest.key,
            UploadId: state.UploadId,
            PartNumber: q.part,
            CopySource: src(q.source),
            CopySourceIfMatch: h.ETag,
            CopySourceRange: `bytes=${s}-${e - 1}`,
          }),
          signal,
        )
        state.parts.push({ PartNumber: q.part, ETag: r.CopyPartResult.ETag })
        return {}
      }
      case 'CompleteMultipartUpload': {
        if (state.parts.length !== q.parts) {
          throw isec.isecError('invalid_state', `${state.parts.length} of ${q.parts} parts copied`)
        }
        const r = await this.#complete(q.dest.bucket, q.dest.key, state.UploadId, state.parts, signal)
        return { output: r }
      }
      case 'DeleteObject':
        await this.#send(new DeleteObjectCommand({ Bucket: q.object.bucket, Key: q.object.key }), signal)
        return {}
      case 'AbortMultipartUpload':
        if (state.UploadId !== undefined) await this.#abortUpload(q.dest.bucket, q.dest.key, state.UploadId)
        return {}
      case 'Reencrypt':
        return this.#reencryptStep(q, h, o)
      case 'VerifyIsec':
        state.verified = await this.#verifyIsec(q, state.etag, signal)
        return {}
      default:
        throw isec.isecError('invalid_state', `unknown copy request ${q.op}`)
    }
  }

  /**
   * A `VerifyIsec` step (SPEC.md §12.3): the object just written must be isec under the
   * step's kid with the ETag the previous step wrote (`etag`), and decrypt in full, pinned
   * to that ETag, to the step's plaintext length when it gives one. A failure stops the
   * steps, with nothing undone. Returns the object's `{ ETag, VersionId }`.
   */
  async #verifyIsec(q, etag, signal) {
    const { HeadObjectCommand } = s3()
    const { bucket: Bucket, key: Key } = q.object
    const where = `s3://${Bucket}/${Key}`
    const h = await this.#send(new HeadObjectCommand({ Bucket, Key }), signal)
    const step = await this.#openStep(Bucket, Key, h.Metadata, h.ContentLength, signal)
    if (step.format !== 'isec' || step.envelope.kid !== q.kid) {
      throw isec.isecError('invalid_state', `${where} is not isec under ${q.kid} after its migration`)
    }
    const unquoted = (t) => String(t ?? '').replace(/"/g, '')
    if (etag && unquoted(h.ETag) !== unquoted(etag)) {
      throw isec.isecError('invalid_state', `${where} changed during its migration`)
    }
    // The whole object through one decryptor, pinned to that ETag; the plaintext is counted
    // and dropped.
    const w = await this.#wholeRead({ Bucket, Key, IfMatch: h.ETag, signal })
    let n = 0
    try {
      if (w.opened === null || w.opened.format !== 'isec' || w.opened.kid !== q.kid) {
        throw isec.isecError('invalid_state', `${where} is not isec under ${q.kid} after its migration`)
      }
      for await (const pt of decryptChunks(w.decryptor(), w.pieces(), signal)) n += pt.length
    } finally {
      w.close()
    }
    if (q.plaintextLength != null && n !== q.plaintextLength) {
      throw isec.isecError('invalid_state', `${where}: ${n} bytes after its migration, ${q.plaintextLength} before`)
    }
    return { ETag: h.ETag, VersionId: h.VersionId }
  }

  /** Sends undo requests, best effort: the step's own failure is the one to report. */
  async #undo(requests, state) {
    for (const q of requests) {
      try {
        await this.#request(q, {}, state, { src: () => undefined, isObject: () => false, carried: {}, rest: {} })
      } catch {
        // A lifecycle rule reaps what a failed clean-up leaves.
      }
    }
  }

  /**
   * The data path of a `reencrypt` step: GET the source pinned to its ETag, then encrypt a
   * plaintext source, or run core's re-encryption job over an isec or previous-proxy one,
   * and upload with the step's user metadata, the new envelope's keys and the carried
   * headers.
   */
  async #reencryptStep(q, h, o) {
    const { carried, signal, plan, step, SourceVersionId } = o
    const user = pairsToObject(q.metadata || [])
    const src = { Bucket: q.source.bucket, Key: q.source.key, VersionId: SourceVersionId, IfMatch: h.ETag }
    const Bucket = q.dest.bucket
    const Key = q.dest.key
    if (plan.reason === 'encrypt_plaintext') {
      const { GetObjectCommand } = s3()
      const g = await this.#send(new GetObjectCommand(src), signal)
      const r = await this.putObject({
        ...carried,
        Bucket,
        Key,
        Body: g.Body,
        ContentLength: h.ContentLength,
        Metadata: user,
        signal,
      })
      return { output: r, extra: { kid: r.kid, envelope: r.envelope } }
    }
    return this.#reencrypt(h, step, src, { Bucket, Key, user, carried, signal })
  }

  /**
   * Core's re-encryption job (an isec source under any readable key, or a previous-proxy
   * object) from the source's GET body straight into the upload.
   */
  async #reencrypt(h, step, src, { Bucket, Key, user, carried, signal }) {
    const opened = await this.#reader(src.Bucket, src.Key, step, h.ContentLength)
    // The new object is in the parts layout, one isec part per S3 part.
    const opts = { rate: this.#rate, partSize: this.#partSize }
    if (this.#frameSize !== undefined) opts.frameSize = this.#frameSize
    const ring = this.#ring
    const plaintextLength = opened.format === 'legacy' ? opened.object.plaintextLength : opened.shape.plaintextLength
    // The new envelope first: an external active key answers asynchronously.
    const created = await ring.withExternal(isec.ReencryptionJob.beginTarget(ring, plaintextLength, opts))
    Object.assign(opts, { targetEnvelope: created.envelope, targetKey: created.key })
    const job =
      opened.format === 'legacy'
        ? isec.ReencryptionJob.startLegacy(ring, opened.object, opts)
        : isec.ReencryptionJob.startIsec(ring, opened.envelope, opened.shape, { ...opts, sourceKey: opened.key })
    const target = job.targetEnvelope
    const total = isec.Shape.forPlaintext(target, plaintextLength).ciphertextLength
    const Metadata = this.#objectMetadata(target, user)
    const { GetObjectCommand } = s3()
    const inner = linked(signal)
    const send = (cmd) => this.#send(cmd, inner.signal)
    let g
    // In place, the source is read only once the new object's multipart upload exists (even
    // for one part): on a server that orders writes by their start (Garage), a write to the
    // key that starts afterwards cancels the upload (NoSuchUpload) instead of being
    // overwritten by the re-encrypted older version (SPEC.md §15.5).
    const inPlace = src.Bucket === Bucket && src.Key === Key
    async function* output() {
      g = await send(new GetObjectCommand(src))
      for await (const c of g.Body) {
        let chunk = toBuffer(c)
        while (chunk.length > 0) {
          const step = job.update(chunk, Date.now())
          if (step.output.length > 0) yield step.output
          chunk = chunk.subarray(step.consumed)
          if (step.consumed === 0 && step.waitMs > 0) await sleep(step.waitMs, inner.signal)
        }
      }
      const last = job.finish()
      if (last.length > 0) yield last
    }
    try {
      const r = await this.#putBytes(
        Bucket,
        Key,
        total,
        output(),
        Metadata,
        carried,
        inner.signal,
        job.targetPartLength,
        inPlace,
      )
      return { output: r, extra: { kid: target.kid, envelope: target } }
    } catch (e) {
      inner.abort(e)
      if (g && g.Body && typeof g.Body.destroy === 'function') g.Body.destroy()
      throw e
    } finally {
      inner.dispose()
    }
  }
}

module.exports = { IsecS3, S3_MIN_PART }
