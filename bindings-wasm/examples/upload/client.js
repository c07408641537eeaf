// Shared by the page and its Worker: the backend calls and the keyring holding the
// recipient's public key only (GET /api/recipient): it encrypts to the recipient and can
// never decrypt, not even what this page uploaded.
export async function api(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const j = await r.json()
  if (!r.ok) throw new Error(`${path}: ${j.error}`)
  return j
}

/** A keyring with the recipient's public key as its active key: no key that decrypts. */
export async function keyring(isec) {
  const r = await fetch('/api/recipient')
  if (!r.ok) throw new Error(`/api/recipient: ${r.status}`)
  const { kid, publicKey } = await r.json()
  const ring = new isec.Keyring()
  ring.addPublicKey(kid, publicKey, 'active')
  return ring
}

/** S3's part rules (5 MiB minimum but the last, 10000 parts) with whole frames per part. */
export function partSize(size, frameSize) {
  let p = 8 << 20
  while (Math.ceil(size / p) > 10000) p *= 2
  return Math.ceil(p / frameSize) * frameSize
}
