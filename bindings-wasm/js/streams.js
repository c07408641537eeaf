// WHATWG TransformStreams over the streaming contexts, for files larger than memory:
//
//   file.stream().pipeThrough(new EncryptStream(key)).pipeTo(upload)
//   response.body.pipeThrough(new DecryptStream(key)).pipeTo(sink)
//
// Each stream holds one core context, which buffers at most one frame. Backpressure is the
// TransformStream's own: `transform` returns the context's promise, so the next chunk is not
// taken until the previous one is encrypted (or verified and decrypted) and enqueued, and
// the readable side holds no more than its high-water mark. No format logic lives here.

/** A chunk as bytes: Uint8Array, any ArrayBufferView, or ArrayBuffer. */
export function toBytes(chunk) {
  if (chunk instanceof Uint8Array) return chunk
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk)
  throw new TypeError('isec streams take Uint8Array, ArrayBufferView or ArrayBuffer chunks')
}

export function makeStreams(wasm) {
  // `parts`: enqueue the output as the pieces the context hands over (WebCrypto's own result
  // buffers) instead of one concatenated array. DecryptStream does (each piece is a frame's
  // plaintext); EncryptStream does not, since its pieces alternate 12-byte nonces with
  // ciphertexts, and one chunk per call serves uploads and readers better than a copy saved.
  //
  // Chunks are gathered until `batchBytes` (default: 16 frames, at least 1 MiB) before the
  // context is called, so that several frames' WebCrypto calls run at once (each costs tens of
  // microseconds on its own); `Blob.stream()` delivers chunks of 64 KiB or so. Chunks written
  // to the stream are kept until then, as a WritableStream's chunks may be.
  function transformer(ctx, parts, batchBytes) {
    const batch = batchBytes ?? Math.max(1 << 20, 16 * ctx.frameCiphertextLength)
    let pending = []
    let pendingBytes = 0
    const enqueue = (controller, out) => {
      if (parts) for (const piece of out) controller.enqueue(piece)
      else if (out.length > 0) controller.enqueue(out)
    }
    const drain = async (controller) => {
      if (pending.length === 0) return
      const chunks = pending
      pending = []
      pendingBytes = 0
      enqueue(controller, await (parts ? ctx.updateParts(chunks) : ctx.update(chunks)))
    }
    return {
      async transform(chunk, controller) {
        const bytes = toBytes(chunk)
        if (bytes.length === 0) return
        pending.push(bytes)
        pendingBytes += bytes.length
        if (pendingBytes >= batch) await drain(controller)
      },
      async flush(controller) {
        await drain(controller)
        enqueue(controller, await (parts ? ctx.finalParts() : ctx.final()))
        ctx.free()
      },
    }
  }

  /**
   * Encrypts a byte stream: a whole single-layout object, or with `{ partNumber, isLast }`
   * one part of a multipart object. `backend`: `'auto'` (default), `'webcrypto'`, `'wasm'`.
   */
  class EncryptStream extends TransformStream {
    constructor(key, options = {}) {
      const { partNumber, isLast = false, backend, batchBytes, writableStrategy, readableStrategy } = options
      const ctx =
        partNumber === undefined
          ? new wasm.Encryptor(key, { backend })
          : wasm.Encryptor.forPart(key, partNumber, isLast, { backend })
      super(transformer(ctx, false, batchBytes), writableStrategy, readableStrategy)
      this.backend = ctx.backend
    }
  }

  /**
   * Decrypts a byte stream: a whole single- or parts-layout object; with `{ shape }` a whole
   * object of known shape (table layout); with `{ shape, start, end }` the ciphertext
   * `shape.mapRange(start, end)` names, releasing exactly `[start, end)`. A frame is released
   * only after it verified; the stream errors (with the core error code) on tampering,
   * reordering or truncation.
   */
  class DecryptStream extends TransformStream {
    constructor(key, options = {}) {
      const { shape, start, end, backend, batchBytes, writableStrategy, readableStrategy } = options
      let ctx
      if (start !== undefined || end !== undefined) {
        if (!shape) throw wasm.isecError('invalid_parameter', 'a ranged DecryptStream needs { shape }')
        ctx = wasm.Decryptor.forRange(key, shape, start ?? 0, end ?? Infinity, { backend })
      } else if (shape) {
        ctx = wasm.Decryptor.withShape(key, shape, { backend })
      } else {
        ctx = new wasm.Decryptor(key, { backend })
      }
      super(transformer(ctx, true, batchBytes), writableStrategy, readableStrategy)
      this.backend = ctx.backend
    }
  }

  /** Decrypts a legacy proxy object's stream (wasm backend). */
  class LegacyDecryptStream extends TransformStream {
    constructor(key, object, options = {}) {
      const { start, end, writableStrategy, readableStrategy } = options
      const ctx =
        start !== undefined || end !== undefined
          ? wasm.LegacyDecryptor.forRange(key, object, start ?? 0, end ?? Infinity)
          : new wasm.LegacyDecryptor(key, object)
      super(
        {
          transform(chunk, controller) {
            const out = ctx.update(toBytes(chunk))
            if (out.length > 0) controller.enqueue(out)
          },
          flush(controller) {
            const out = ctx.final()
            if (out.length > 0) controller.enqueue(out)
            ctx.free()
          },
        },
        writableStrategy,
        readableStrategy,
      )
    }
  }

  return { EncryptStream, DecryptStream, LegacyDecryptStream }
}
