// Type-checked against the installed package with lib ["es2022", "dom"] (no esnext).
import init, { Keyring, Envelope, encrypt, decrypt, EncryptStream, type ObjectKey } from '@isec/wasm'
import wasmUrl from '@isec/wasm/isec_wasm_bg.wasm'
export const bundled: Promise<unknown> = init(wasmUrl)

export async function use(bytes: Uint8Array, url: URL): Promise<Uint8Array> {
  await init(url)
  const ring = new Keyring()
  ring.addKek('k', bytes, 'active')
  const { envelope, key }: { envelope: Envelope; key: ObjectKey } = await ring.createEnvelope()
  const stream: TransformStream<BufferSource, Uint8Array> = new EncryptStream(key)
  void stream
  return decrypt(await ring.open(envelope), await encrypt(key, bytes))
}
