'use strict'
// Node streams over the native streaming contexts. A Transform holds one core context and
// feeds it each chunk: small chunks synchronously, large ones on the libuv pool (so the
// event loop keeps turning). Backpressure is the Transform's own: the next chunk is not
// taken until the output pushed so far is read. The contexts buffer at most one frame.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { Transform } = require('node:stream')
const { pipeline } = require('node:stream/promises')

const native = require('./native.js')

/** Chunks at least this large are processed on the libuv pool. */
const ASYNC_THRESHOLD = 256 * 1024

/** `options` as given (`{}` when absent); anything but an object is a typed `TypeError`. */
function optionsOf(options, what) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object') {
    const e = native.isecError('invalid_parameter', `${what} options must be an object`)
    Object.setPrototypeOf(e, TypeError.prototype)
    throw e
  }
  return options
}

class CryptoTransform extends Transform {
  #ctx
  #token = new native.CancelToken()
  #threshold
  /** Whether the context writes into a given buffer (it tells its output's bound). */
  #into

  constructor(ctx, options) {
    const { asyncThreshold = ASYNC_THRESHOLD, ...rest } = optionsOf(options, 'stream')
    super({ ...rest, readableObjectMode: false, writableObjectMode: false })
    this.#ctx = ctx
    this.#threshold = asyncThreshold
    this.#into = typeof ctx.updateLength === 'function' && typeof ctx.updateInto === 'function'
  }

  _transform(chunk, encoding, callback) {
    if (typeof chunk === 'string') chunk = Buffer.from(chunk, encoding)
    if (chunk.length >= this.#threshold) {
      this.#ctx.updateAsync(chunk, this.#token).then((out) => {
        if (out.length > 0) this.push(out)
        callback()
      }, callback)
      return
    }
    let out
    try {
      // Into a Buffer allocated here (memory the garbage collector accounts for) rather
      // than one made natively per chunk, which it would let pile up.
      if (this.#into) {
        out = Buffer.allocUnsafe(this.#ctx.updateLength(chunk.length))
        out = out.subarray(0, this.#ctx.updateInto(chunk, out))
      } else {
        out = this.#ctx.update(chunk)
      }
    } catch (e) {
      callback(e)
      return
    }
    if (out.length > 0) this.push(out)
    callback()
  }

  _flush(callback) {
    let out
    try {
      out = this.#ctx.final()
    } catch (e) {
      callback(e)
      return
    }
    if (out.length > 0) this.push(out)
    callback()
  }

  _destroy(err, callback) {
    this.#token.cancel()
    callback(err)
  }
}

/**
 * Encrypts a stream: a whole single-layout object, or with `{ partNumber, isLast }` one
 * part of a multipart object.
 */
class EncryptStream extends CryptoTransform {
  constructor(key, options) {
    const { partNumber, isLast = false, ...rest } = optionsOf(options, 'EncryptStream')
    const ctx = partNumber === undefined ? new native.Encryptor(key) : native.Encryptor.forPart(key, partNumber, isLast)
    super(ctx, rest)
    /** The nonce prefix of this encryption, for the part's segment-table entry. */
    this.prefix = ctx.prefix
  }
}

/**
 * Decrypts a stream: a whole single- or parts-layout object; with `{ shape }` an object of
 * known shape (required for the table layout); with `{ shape, range: [start, end] }` the
 * ciphertext `shape.mapRange(start, end)` names, releasing exactly that plaintext.
 *
 * Verified frames are released before the end of the object is known; a consumer that must
 * not act on a prefix of an object writes to a temporary place and commits on `finish`
 * (as `decryptFile` does).
 */
class DecryptStream extends CryptoTransform {
  constructor(key, options) {
    const { shape, range, ...rest } = optionsOf(options, 'DecryptStream')
    let ctx
    if (range) {
      if (!shape) throw native.isecError('invalid_parameter', 'a range needs the object shape')
      ctx = native.Decryptor.forRange(key, shape, range[0], range[1])
    } else if (shape) {
      ctx = native.Decryptor.withShape(key, shape)
    } else {
      ctx = new native.Decryptor(key)
    }
    super(ctx, rest)
  }
}

/** Decrypts a legacy proxy object's body (or, with `{ range }`, a planned range of it). */
class LegacyDecryptStream extends CryptoTransform {
  constructor(key, object, options) {
    const { range, ...rest } = optionsOf(options, 'LegacyDecryptStream')
    const ctx = range
      ? native.LegacyDecryptor.forRange(key, object, range[0], range[1])
      : new native.LegacyDecryptor(key, object)
    super(ctx, rest)
  }
}

const FILE_CHUNK = 1024 * 1024

/** Encrypts file `src` to file `dst` (single layout) with `stream.pipeline`. */
async function encryptFile(key, src, dst, options) {
  const { signal, highWaterMark = FILE_CHUNK } = optionsOf(options, 'encryptFile')
  await pipeline(
    fs.createReadStream(src, { highWaterMark }),
    new EncryptStream(key),
    fs.createWriteStream(dst),
    { signal },
  )
}

/**
 * Decrypts file `src` to file `dst`, all or nothing: plaintext goes to a temporary file
 * next to `dst`, renamed over it only when the whole object verified; on any error the
 * temporary file is removed and `dst` is untouched.
 */
async function decryptFile(key, src, dst, options) {
  const { signal, shape, highWaterMark = FILE_CHUNK } = optionsOf(options, 'decryptFile')
  const tmp = path.join(path.dirname(dst), `.${path.basename(dst)}.${crypto.randomBytes(6).toString('hex')}.partial`)
  try {
    await pipeline(
      fs.createReadStream(src, { highWaterMark }),
      new DecryptStream(key, { shape }),
      fs.createWriteStream(tmp, { mode: 0o600 }),
      { signal },
    )
    await fs.promises.rename(tmp, dst)
  } catch (e) {
    await fs.promises.rm(tmp, { force: true })
    throw e
  }
}

module.exports = { EncryptStream, DecryptStream, LegacyDecryptStream, encryptFile, decryptFile, ASYNC_THRESHOLD }
