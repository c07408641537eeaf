// The measurement of benches/wasm/recipients.mjs, shared by its Node run and its Chromium
// page (served at /benches/recipients.js): envelope creation and opening per second under an
// AES-KWP KEK and under an HPKE-X25519 recipient, and each envelope's metadata text length.
// Not a test.

/** Calls `fn` repeatedly for about `ms` milliseconds; operations per second. */
function rate(fn, ms) {
  // Warm-up: JIT, wasm tiering, the first allocations.
  for (let i = 0; i < 20; i++) fn()
  let n = 0
  const t0 = performance.now()
  let t = t0
  while (t - t0 < ms) {
    for (let i = 0; i < 16; i++) fn()
    n += 16
    t = performance.now()
  }
  return (n * 1000) / (t - t0)
}

/**
 * `isec`: the package's API (either entry). Rounds interleave the cases, so load on the
 * machine hits them alike, and each case keeps its best round.
 */
export function measure(isec, { rounds = 5, ms = 400 } = {}) {
  const kek = new isec.Keyring()
  kek.addKek('kek-1', crypto.getRandomValues(new Uint8Array(32)))
  const { privateKey, publicKey } = isec.generateRecipient()
  const writer = new isec.Keyring()
  writer.addPublicKey('rcp-1', publicKey)
  const reader = new isec.Keyring()
  reader.addPrivateKey('rcp-1', privateKey)
  const cases = {
    'aes-kwp': { create: kek, open: kek, envelope: kek.createEnvelopeSync().envelope },
    'hpke-x25519': { create: writer, open: reader, envelope: writer.createEnvelopeSync().envelope },
  }
  const out = {}
  for (const [alg, c] of Object.entries(cases)) {
    if (c.envelope.wrapAlg !== alg) throw new Error(`${alg}: made ${c.envelope.wrapAlg}`)
    out[alg] = { create: 0, open: 0, textLength: c.envelope.toText().length, binaryLength: c.envelope.encode().length }
  }
  for (let r = 0; r < rounds; r++) {
    for (const [alg, c] of Object.entries(cases)) {
      out[alg].create = Math.max(out[alg].create, rate(() => c.create.createEnvelopeSync().key.free(), ms))
      out[alg].open = Math.max(out[alg].open, rate(() => c.open.openSync(c.envelope).free(), ms))
    }
  }
  return out
}
