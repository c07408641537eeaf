// Benchmark (not a test): isec's Node binding against a node:crypto AES-256-GCM per-frame
// loop and @aws-crypto/client-node with a raw AES keyring, in one run, at 64 KiB and 1 MiB
// frames. Prints MB/s (10^6 bytes of plaintext per second) and isec's ratios.
//
//   (cd bindings-node && npm install && npx napi build --platform --release)
//   (cd benches/node && npm install && node bench.mjs [--mib 256] [--aws-mib 32])
//
// isec is measured as its API is meant for throughput: a streaming Encryptor/Decryptor fed
// 4 MiB pieces, writing into one reused output buffer (updateInto/finalInto); the one-shot
// call, which returns a fresh buffer for the whole object, is printed too.
import { createRequire } from 'node:module'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const require = createRequire(import.meta.url)
const isec = require('../../bindings-node/lib/index.js')
const aws = require('@aws-crypto/client-node')

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const MIB = 1024 * 1024
const SIZE = arg('--mib', 256) * MIB
const AWS_SIZE = arg('--aws-mib', 32) * MIB

/** Best MB/s of `reps` runs of `fn` over `bytes` bytes, after one warm-up. */
function measure(bytes, fn, reps = 5) {
  fn()
  let best = Infinity
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint()
    fn()
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9)
  }
  return bytes / best / 1e6
}

async function measureAsync(bytes, fn, reps = 3) {
  await fn()
  let best = Infinity
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint()
    await fn()
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9)
  }
  return bytes / best / 1e6
}

const pt = randomBytes(SIZE)
const awsPt = pt.subarray(0, AWS_SIZE)
const rows = []

for (const frame of [64 * 1024, MIB]) {
  // isec
  const ring = new isec.Keyring()
  ring.addKek('bench', randomBytes(32))
  const { key } = ring.createEnvelopeSync({ frameSize: frame })
  const frames = Math.ceil(SIZE / frame)
  // Streaming in 4 MiB pieces into one reused output buffer, as a reader of an HTTP body or
  // a file would; the ciphertext is kept for the decryption runs.
  const PIECE = 4 * MIB
  const scratch = Buffer.alloc(2 * (PIECE + frame))
  const ct = Buffer.alloc(SIZE + frames * 28)
  let ctLen = 0
  const isecEnc = measure(SIZE, () => {
    const e = new isec.Encryptor(key)
    ctLen = 0
    for (let off = 0; off < SIZE; off += PIECE) {
      const n = e.updateInto(pt.subarray(off, off + PIECE), scratch)
      ctLen += n
    }
    ctLen += e.finalInto(scratch)
  })
  {
    // Keep one ciphertext (outside the timed runs).
    const e = new isec.Encryptor(key)
    let w = 0
    for (let off = 0; off < SIZE; off += PIECE) w += e.updateInto(pt.subarray(off, off + PIECE), ct.subarray(w))
    w += e.finalInto(ct.subarray(w))
    if (w !== ctLen) throw new Error('isec length')
  }
  let check = null
  const isecDec = measure(SIZE, () => {
    const d = new isec.Decryptor(key)
    let got = 0
    for (let off = 0; off < ctLen; off += PIECE) {
      const n = d.updateInto(ct.subarray(off, Math.min(off + PIECE, ctLen)), scratch)
      if (off === 0) check = Buffer.from(scratch.subarray(0, 1024))
      got += n
    }
    got += d.finalInto(scratch)
    if (got !== SIZE) throw new Error('isec round trip')
  })
  if (!check.equals(pt.subarray(0, 1024))) throw new Error('isec plaintext')
  const oneEnc = measure(SIZE, () => isec.encryptSync(key, pt), 3)
  const oneDec = measure(SIZE, () => isec.decryptSync(key, ct), 3)

  // node:crypto, one cipher per frame, as a framed format in JS would do it.
  const k = randomBytes(32)
  const nonce = Buffer.alloc(12)
  let nodeOut = []
  const nodeEnc = measure(SIZE, () => {
    nodeOut = []
    for (let i = 0, off = 0; off < SIZE; i++, off += frame) {
      nonce.writeUInt32BE(i, 8)
      const c = createCipheriv('aes-256-gcm', k, nonce)
      nodeOut.push(c.update(pt.subarray(off, off + frame)), c.final(), c.getAuthTag())
    }
  })
  const nodeDec = measure(SIZE, () => {
    for (let i = 0; i < nodeOut.length / 3; i++) {
      nonce.writeUInt32BE(i, 8)
      const d = createDecipheriv('aes-256-gcm', k, nonce)
      d.setAuthTag(nodeOut[3 * i + 2])
      d.update(nodeOut[3 * i])
      d.final()
    }
  })

  // @aws-crypto/client-node, raw AES keyring, committing suite (its default).
  const { encrypt, decrypt } = aws.buildClient(aws.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const keyring = new aws.RawAesKeyringNode({
    keyName: 'bench',
    keyNamespace: 'isec-bench',
    unencryptedMasterKey: new Uint8Array(randomBytes(32)),
    wrappingSuite: aws.RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  })
  let awsCt
  const awsEnc = await measureAsync(AWS_SIZE, async () => {
    awsCt = (await encrypt(keyring, awsPt, { frameLength: frame })).result
  })
  const awsDec = await measureAsync(AWS_SIZE, async () => {
    const { plaintext } = await decrypt(keyring, awsCt)
    if (plaintext.length !== AWS_SIZE) throw new Error('aws round trip')
  })

  rows.push({ frame, isecEnc, isecDec, oneEnc, oneDec, nodeEnc, nodeDec, awsEnc, awsDec })
}

const f0 = (x) => x.toFixed(0).padStart(6)
const r1 = (x) => `${x.toFixed(1)}x`.padStart(6)
console.log(`plaintext ${SIZE / MIB} MiB (AWS SDK: ${AWS_SIZE / MIB} MiB), one thread, MB/s encrypt / decrypt`)
console.log('frame    | isec (into)   | isec one-shot | node:crypto   | @aws-crypto   | isec/node enc dec | isec/aws enc dec')
for (const r of rows) {
  console.log(
    `${(r.frame / 1024 + ' KiB').padEnd(8)} | ${f0(r.isecEnc)} ${f0(r.isecDec)} | ${f0(r.oneEnc)} ${f0(r.oneDec)} | ` +
      `${f0(r.nodeEnc)} ${f0(r.nodeDec)} | ${f0(r.awsEnc)} ${f0(r.awsDec)} | ` +
      `${r1(r.isecEnc / r.nodeEnc)} ${r1(r.isecDec / r.nodeDec)}     | ${r1(r.isecEnc / r.awsEnc)} ${r1(r.isecDec / r.awsDec)}`,
  )
}
const ok = rows.every(
  (r) => r.isecEnc >= 2 * r.nodeEnc && r.isecDec >= 2 * r.nodeDec && r.isecEnc >= 15 * r.awsEnc && r.isecDec >= 15 * r.awsDec,
)
console.log(ok ? 'targets met: >= 2x node:crypto, >= 15x @aws-crypto/client-node' : 'TARGETS MISSED (>= 2x node:crypto, >= 15x @aws-crypto/client-node)')
