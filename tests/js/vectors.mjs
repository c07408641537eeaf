// Reading the shared corpus (tests/vectors/) in JavaScript: the byte helpers and the case
// fields the Node addon's tests, the browser package's corpus harness (under Node and in
// Chromium) and the interop harness all read the same way. Plain ES module with no Node
// imports, so a browser can load it (bindings-wasm/test/browser/server.mjs serves this
// folder at /tests/js/).

/** Hex text to bytes. */
export const hex = (s) => {
  const out = new Uint8Array(s.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** Bytes to lowercase hex text. */
export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')

/** The corpus's plaintext of `n` bytes: byte i is i mod 251. */
export const pattern = (n) => {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = i % 251
  return out
}

/** The pieces of `parts`, joined. */
export const concat = (parts) => {
  const n = parts.reduce((a, p) => a + p.length, 0)
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** A copy_decisions.json case's `request` as `decideCopy` takes it. */
export function copyRequest(r) {
  return {
    sourceMetadata: r.source_metadata,
    sourceSize: r.source_size,
    sourceSidecar: r.source_sidecar,
    directive: r.directive,
    newMetadata: r.new_metadata,
    targetKid: r.target_kid ?? undefined,
    rotateDek: r.rotate_dek,
    migrateLegacy: r.migrate_legacy,
    requireEncryption: r.require_encryption,
    limits: {
      singleCopyMax: r.limits.single_copy_max,
      partMin: r.limits.part_min,
      partMax: r.limits.part_max,
      maxParts: r.limits.max_parts,
      metadataMax: r.limits.metadata_max,
    },
  }
}

/**
 * A keyring from keys.json's `keys`: with `states`, exactly those kids in those states;
 * without, every key decrypt-only. `bytes` turns hex into the package's bytes type.
 */
export function keyringFrom(isec, keys, states, bytes = hex) {
  const ring = new isec.Keyring()
  const wanted = states ? Object.entries(states) : Object.keys(keys).map((k) => [k, 'decrypt_only'])
  for (const [kid, state] of wanted) {
    const k = keys[kid]
    if (k.legacy_secret) ring.addLegacySecretString(kid, k.legacy_secret)
    else ring.addKek(kid, bytes(k.kek), state)
  }
  return ring
}

/**
 * One case of an object vector file (frames.json, multipart.json, ...), opened with `ring`:
 * its envelope, key, ciphertext, plaintext, segment table and expected outcomes. `make`
 * may replace `hex` and `pattern` with ones giving the package's bytes type.
 */
export function objectCase(isec, ring, t, make = { hex, pattern }) {
  const env = isec.Envelope.decodeText(t.envelope)
  const error = t.error ?? null
  return {
    env,
    key: ring.openSync(env),
    ct: make.hex(t.ciphertext),
    pt: make.pattern(t.plaintext_len),
    error,
    rangedError: t.ranged_error ?? error,
    released: t.released,
    table: t.segment_table ? make.hex(t.segment_table) : null,
    frame: env.frameSize,
  }
}
