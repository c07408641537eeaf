// Compile-only check of index.d.ts (test/node/types.test.mjs runs tsc --noEmit on it).
import init, { DecryptStream, EncryptStream, Envelope, Keyring, Shape, decideCopy, encrypt, type IsecError } from '../../index.js'

export async function demo(file: Blob, upload: WritableStream<Uint8Array>): Promise<number> {
  const isec = await init()
  const ring = new Keyring()
  ring.addKek('kek-1', new Uint8Array(32), 'active')
  ring.addExternal('kms', { wrap: async (_kid, dek) => dek, unwrap: (_kid, w) => w })
  const { envelope, key } = await ring.createEnvelope({ frameSize: 65536, partSize: 8 << 20 })
  await file.stream().pipeThrough(new EncryptStream(key, { partNumber: 1, isLast: true, backend: 'webcrypto' })).pipeTo(upload)
  const ct: Uint8Array = await encrypt(key, new Uint8Array(10), { backend: 'wasm' })
  const shape = Shape.fromCiphertextLength(Envelope.decodeText(envelope.toText()), ct.length)
  const plan = shape.mapRange(0, Infinity)
  const d = new DecryptStream(key, { shape, start: 0, end: 5 })
  const p = decideCopy({ sourceMetadata: { isec: envelope.toText() }, sourceSize: ct.length }, ring)
  try {
    isec.Envelope.decodeText('x')
  } catch (e) {
    const err = e as IsecError
    return err.code.length + p.requests + plan.ctEnd + (d.backend === 'wasm' ? 1 : 0)
  }
  return 0
}
