// A consumer of the installed @isec/wasm package (test/browser/bundlers.test.mjs bundles it
// with esbuild, Vite and webpack): instantiates the module, then encrypts and decrypts on the
// default backend and on the wasm one. The page reads window.__result or window.__error.
import init, { Keyring, encrypt, decrypt, backends } from '@isec/wasm'

export async function roundTrip(input) {
  try {
    await init(input)
    const ring = new Keyring()
    ring.addKek('kek-1', crypto.getRandomValues(new Uint8Array(32)), 'active')
    const { envelope, key } = await ring.createEnvelope()
    const text = 'isec round trip from a bundle'
    const checks = {}
    for (const backend of backends()) {
      const ct = await encrypt(key, new TextEncoder().encode(text), { backend })
      const pt = await decrypt(await ring.open(envelope), ct, { backend })
      checks[backend] = new TextDecoder().decode(pt) === text && ct.length > text.length
    }
    window.__result = { checks }
  } catch (e) {
    window.__error = `${e.code ?? ''} ${e.message}`
  }
}
