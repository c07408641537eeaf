// Compile-only check of index.d.ts (test/node/types.test.mjs runs tsc --noEmit on it).
import init, { DecryptStream, EncryptStream, Encryptor, Envelope, Keyring, SegmentTable, Shape, decideCopy, encrypt, generateRecipient, publicKeyOf, type IsecError, type KeyKind } from '../../index.js'

export async function demo(file: Blob, upload: WritableStream<Uint8Array>): Promise<number> {
  const isec = await init()
  const ring = new Keyring()
  ring.addKek('kek-1', new Uint8Array(32), 'active')
  ring.addLegacySecretString('old-proxy', 'secret')
  ring.setDefaultLegacy('old-proxy')
  // @ts-expect-error: a kid is a string
  ring.setDefaultLegacy(1)
  ring.addExternal('kms', { wrap: async (_kid, dek) => dek, unwrap: (_kid, w) => w })
  const { envelope, key } = await ring.createEnvelope({ frameSize: 65536, partSize: 8 << 20 })
  // Public-key recipients: a writer with the public key, a reader from a keyring file, a
  // private key held by a service.
  const pair: { privateKey: string; publicKey: string } = generateRecipient()
  const pub: string = publicKeyOf(pair.privateKey)
  ring.addPublicKey('rcp', pub, 'decrypt_only')
  const reader = Keyring.fromFileText('{"keys": []}')
  reader.addPrivateKey('rcp', pair.privateKey)
  reader.addExternalPrivateKey('hsm', pub, async ({ wrapped, info }) => wrapped.subarray(0, 32).map((b, i) => b ^ (info[i] ?? 0)))
  const kinds: KeyKind[] = reader.keys().map((k) => k.kind)
  const created: Array<string | undefined> = reader.keys().map((k) => k.created)
  // @ts-expect-error: the callback takes one request object
  reader.addExternalPrivateKey('hsm2', pub, (kid: string, wrapped: Uint8Array) => wrapped)
  void [kinds, created]
  const es = new EncryptStream(key, { partNumber: 1, isLast: true, backend: 'webcrypto' })
  await file.stream().pipeThrough(es).pipeTo(upload)
  // Table entries carry each part's nonce prefix.
  const t = ring.createEnvelopeSync({ table: true })
  const enc = Encryptor.forPart(t.key, 1, false)
  const body: Uint8Array = await enc.update(new Uint8Array(5))
  const prefix: Uint8Array = enc.prefix
  const entries: Array<[number, number, Uint8Array]> = new SegmentTable([[1, 5, prefix], [2, 1, es.prefix]]).entries
  // @ts-expect-error: an entry needs its prefix
  new SegmentTable([[1, 5]])
  void [body, entries]
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
