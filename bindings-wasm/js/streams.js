// WHATWG TransformStreams over the streaming contexts, for files larger than memory:
//
//   file.stream().pipeThrough(new EncryptStream(key)).pipeTo(upload)
//   response.body.pipeThrough(new DecryptStream(key)).pipeTo(sink)
//
// Each stream holds one core context. On the WebCrypto backend, frames go to WebCrypto as
// soon as they are complete and several stay in flight while the stream reads on (a
// context's `_pump`), so WebCrypto's thread keeps working while this one reads the source;
// their output is enqueued in order by later calls and by `flush`. Backpressure is the
// TransformStream's own, plus the context's bound on frames in flight: `transform` waits
// for the oldest frame when that bound is reached. No chunk is kept after `transform`
// returns (a frame split across chunks is copied into the context's one frame buffer). No
// format logic lives here.

/** A chunk as bytes: Uint8Array, any ArrayBufferView, or ArrayBuffer; else `refuse`'s error. */
export function toBytes(chunk, refuse = (m) => new TypeError(m)) {
  if (chunk instanceof Uint8Array) return chunk
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk)
  throw refuse('isec takes Uint8Array, ArrayBufferView or ArrayBuffer chunks')
}

/** The streams over `wasm` (the checked exports); `check` refuses arguments of wrong types. */
export function makeStreams(wasm, { toBytes, check, classes }) {
  // Output is enqueued as the pieces the context hands over, without concatenation: for
  // encryption each frame's 12-byte nonce and then WebCrypto's `ciphertext || tag` buffer,
  // for decryption each frame's verified plaintext.
  /** A stream's options: none (undefined or null) or an object, with queuing strategies that
   * are objects when given. */
  function streamOptions(where, i, options) {
    if (options == null) return {}
    check(where, i, 'object', options, classes)
    check(where, i, 'object?', options.writableStrategy, classes)
    check(where, i, 'object?', options.readableStrategy, classes)
    return options
  }

  function transformer(ctx) {
    const enqueue = (controller, pieces) => {
      for (const piece of pieces) controller.enqueue(piece)
    }
    return {
      async transform(chunk, controller) {
        const bytes = toBytes(chunk)
        if (bytes.length === 0) return
        enqueue(controller, await ctx._pump(bytes))
      },
      async flush(controller) {
        enqueue(controller, await ctx.finalParts())
        ctx.free()
      },
    }
  }

  /**
   * Encrypts a byte stream: a whole single-layout object, or with `{ partNumber, isLast }`
   * one part of a multipart object. `backend`: `'auto'` (default), `'webcrypto'`, `'wasm'`.
   */
  class EncryptStream extends TransformStream {
    constructor(key, options) {
      const { partNumber, isLast = false, backend, writableStrategy, readableStrategy } = streamOptions('new EncryptStream', 1, options)
      const ctx =
        partNumber === undefined
          ? new wasm.Encryptor(key, { backend })
          : wasm.Encryptor.forPart(key, partNumber, isLast, { backend })
      super(transformer(ctx), writableStrategy, readableStrategy)
      this.backend = ctx.backend
      // The nonce prefix of this encryption, for the part's segment-table entry.
      this.prefix = ctx.prefix
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
    constructor(key, options) {
      const { shape, start, end, backend, writableStrategy, readableStrategy } = streamOptions('new DecryptStream', 1, options)
      let ctx
      if (start !== undefined || end !== undefined) {
        if (!shape) throw wasm.isecError('invalid_parameter', 'a ranged DecryptStream needs { shape }')
        ctx = wasm.Decryptor.forRange(key, shape, start ?? 0, end ?? Infinity, { backend })
      } else if (shape) {
        ctx = wasm.Decryptor.withShape(key, shape, { backend })
      } else {
        ctx = new wasm.Decryptor(key, { backend })
      }
      super(transformer(ctx), writableStrategy, readableStrategy)
      this.backend = ctx.backend
    }
  }

  /** Decrypts a legacy proxy object's stream (wasm backend). */
  class LegacyDecryptStream extends TransformStream {
    constructor(key, object, options) {
      const { start, end, writableStrategy, readableStrategy } = streamOptions('new LegacyDecryptStream', 2, options)
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
