// Shared by the page and its Worker: the backend calls and the keyring whose key lives in
// the example server's toy KMS (an external, async key wrapper).
const b64 = (u8) => btoa(String.fromCharCode(...u8))
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))

export async function api(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const j = await r.json()
  if (!r.ok) throw new Error(`${path}: ${j.error}`)
  return j
}

/** A keyring with one external key: the KEK never reaches the browser. */
export function keyring(isec) {
  const ring = new isec.Keyring()
  ring.addExternal('demo-kms', {
    wrap: async (kid, dek) => unb64((await api('/api/kms/wrap', { kid, data: b64(dek) })).data),
    unwrap: async (kid, blob) => unb64((await api('/api/kms/unwrap', { kid, data: b64(blob) })).data),
  })
  return ring
}

/** S3's part rules (5 MiB minimum but the last, 10000 parts) with whole frames per part. */
export function partSize(size, frameSize) {
  let p = 8 << 20
  while (Math.ceil(size / p) > 10000) p *= 2
  return Math.ceil(p / frameSize) * frameSize
}
