// Keyring checks under external (async) keys that the Node addon's and the browser package's
// tests share (bindings-node/test/keyring.test.mjs, bindings-wasm/test/node/api.test.mjs):
// both packages drive core's keyring tasks, so concurrent creations and rewraps must pair each
// KMS answer with its own envelope in both. Each test passes its package, its `assert` and
// `of`, which turns a Uint8Array into the package's bytes type (Buffer for the addon). No Node
// built-in is imported here: a browser loads this module too.

const pattern = (n, seed) => new Uint8Array(n).map((_, i) => (i * 13 + seed) % 256)

/**
 * A fake KMS that keeps every DEK it is asked to wrap: the wrapped form is the DEK's index
 * in `deks` and 8 random bytes, the last 9 bytes of an envelope.
 */
export function recordingKms(of = (b) => b) {
  const deks = []
  return {
    deks,
    wrapper: {
      async wrap(kid, dek) {
        const i = deks.push(of(Uint8Array.from(dek))) - 1
        await new Promise((r) => setTimeout(r, 1))
        const out = crypto.getRandomValues(new Uint8Array(9))
        out[0] = i
        return of(out)
      },
      async unwrap(kid, wrapped) {
        return of(Uint8Array.from(deks[wrapped[0]]))
      },
    },
    /** The DEK an envelope's wrapped DEK stands for. */
    dekOf: (envelope) => deks[envelope.encode().at(-9)],
  }
}

/** Two envelopes created at once under an external key: one KMS wrap each, different DEKs. */
export async function concurrentEnvelopesGetDifferentDeks({ isec, assert, of, kid }) {
  const kms = recordingKms(of)
  const r = new isec.Keyring()
  r.addExternal(kid, kms.wrapper)
  const [a, b] = await Promise.all([r.createEnvelope(), r.createEnvelope({ fitParts: { size: 1 << 20, preferred: 5 << 20 } })])
  assert.equal(b.envelope.layout, 'parts')
  assert.equal(kms.deks.length, 2, 'one KMS wrap per envelope')
  assert.notDeepEqual(kms.deks[0], kms.deks[1])
  // Each envelope carries its own answer and opens to the DEK that answer wrapped.
  assert.deepEqual([a.envelope.encode().at(-9), b.envelope.encode().at(-9)], [0, 1])
  const ctA = isec.encryptSync(a.key, of(pattern(100, 1)))
  const ctB = isec.encryptSync(b.key, of(pattern(100, 2)))
  assert.deepEqual(isec.decryptSync(await r.open(a.envelope), ctA), of(pattern(100, 1)))
  assert.deepEqual(isec.decryptSync(await r.open(b.envelope), ctB), of(pattern(100, 2)))
}

/**
 * A rewrap to an external key racing a new envelope under it: the rewrap's KMS answer stays
 * the rewrapped envelope's, and the new envelope gets its own DEK.
 */
export async function rewrapAnswerIsNotNewDek({ isec, assert, of, kid }) {
  const kms = recordingKms(of)
  const r = new isec.Keyring()
  r.addExternal(kid, kms.wrapper)
  r.addKek('local', of(new Uint8Array(32).fill(4)))
  const c = r.createEnvelopeSync()
  r.setState(kid, 'active')
  const [moved, d] = await Promise.all([r.rewrap(c.envelope), r.createEnvelope()])
  assert.equal(moved.kid, kid)
  assert.equal(d.envelope.kid, kid)
  assert.notDeepEqual(kms.dekOf(d.envelope), kms.dekOf(moved))
  assert.equal(kms.deks.length, 2, 'one KMS wrap for the rewrap, one for the new envelope')
  const ctC = isec.encryptSync(c.key, of(pattern(100, 3)))
  assert.deepEqual(isec.decryptSync(await r.open(moved), ctC), of(pattern(100, 3)))
  const ctD = isec.encryptSync(d.key, of(pattern(100, 4)))
  assert.deepEqual(isec.decryptSync(await r.open(d.envelope), ctD), of(pattern(100, 4)))
}
