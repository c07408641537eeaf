// Shared test plumbing: corpus loading, keyrings from keys.json, plaintext pattern.
// No format logic: every expectation comes from the vector files.
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { keyringFrom } from '../../tests/js/vectors.mjs'

const require = createRequire(import.meta.url)
export const isec = require('../lib/index.js')

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const VECTORS = join(ROOT, 'tests', 'vectors')

export function load(name) {
  return JSON.parse(readFileSync(join(VECTORS, name), 'utf8'))
}

export const hex = (s) => Buffer.from(s, 'hex')

export { copyRequest } from '../../tests/js/vectors.mjs'

/** Byte i of a plaintext of length n is i % 251 (the corpus' generator). */
export function pattern(n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = i % 251
  return b
}

/**
 * A keyring from keys.json: with `states`, exactly those kids in those states; without,
 * every key decrypt-only.
 */
export function keyringWith(states) {
  return keyringFrom(isec, load('keys.json').keys, states, hex)
}

/** The error code of a call, or null when it succeeds. */
export function codeOf(fn) {
  try {
    fn()
    return null
  } catch (e) {
    if (typeof e.code !== 'string') throw e
    return e.code
  }
}

export async function codeOfAsync(p) {
  try {
    await p
    return null
  } catch (e) {
    if (typeof e.code !== 'string') throw e
    return e.code
  }
}

/** A small deterministic generator for split sizes. */
export function rng(seed) {
  let s = BigInt(seed) | 1n
  return (n) => {
    s ^= (s << 13n) & 0xffffffffffffffffn
    s ^= s >> 7n
    s ^= (s << 17n) & 0xffffffffffffffffn
    return Number(s % BigInt(n))
  }
}

/** The S3 server the suite runs against: the environment scripts/test-node.sh exports, else
 *  the env file of a Garage started with scripts/garage.sh, else null. */
/**
 * What every S3 suite needs before it runs: the SDK, the server's env (`garageEnv`) and
 * `skip` (false, or why the suite skips). Under CI=true nothing may skip: a missing SDK,
 * server or `ISEC_S3=0` throws. `precondition`, when given, is a reason to skip checked
 * first (the caller has already thrown under CI if it must).
 */
export async function s3Setup(precondition = false) {
  const CI = process.env.CI === 'true'
  if (precondition) return { sdk: null, ENV: null, skip: precondition }
  if (process.env.ISEC_S3 === '0') {
    if (CI) throw new Error('ISEC_S3=0 cannot skip the S3 tests under CI=true')
    return { sdk: null, ENV: null, skip: 'ISEC_S3=0' }
  }
  const ENV = garageEnv()
  let sdk = null
  try {
    sdk = require('@aws-sdk/client-s3')
  } catch (e) {
    if (CI) throw e
    return { sdk: null, ENV, skip: '@aws-sdk/client-s3 is not installed (npm install)' }
  }
  let reachable = false
  if (ENV) {
    try {
      await fetch(ENV.ISEC_S3_ENDPOINT, { signal: AbortSignal.timeout(3000) })
      reachable = true
    } catch {
      // No answer: a stale env file of a stopped server.
    }
  }
  if (!reachable) {
    if (CI) throw new Error('no S3 server: CI must run these tests (scripts/test-node.sh starts Garage)')
    return { sdk, ENV, skip: 'no Garage running (bash scripts/garage.sh start)' }
  }
  return { sdk, ENV, skip: false }
}

/** The S3Client options of the test server `ENV` (`garageEnv`), with `extra` on top. */
export function garageClientConfig(ENV, extra = {}) {
  return {
    endpoint: ENV.ISEC_S3_ENDPOINT,
    region: ENV.ISEC_S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ENV.ISEC_S3_ACCESS_KEY_ID, secretAccessKey: ENV.ISEC_S3_SECRET_ACCESS_KEY },
    ...extra,
  }
}

/** Deletes every object under `prefix` (a suite's own keys), page by page. */
export async function deletePrefix(sdk, client, Bucket, Prefix) {
  let token
  do {
    const r = await client.send(new sdk.ListObjectsV2Command({ Bucket, Prefix, ContinuationToken: token }))
    for (const o of r.Contents ?? []) await client.send(new sdk.DeleteObjectCommand({ Bucket, Key: o.Key }))
    token = r.IsTruncated ? r.NextContinuationToken : undefined
  } while (token)
}

export function garageEnv() {
  if (process.env.ISEC_S3_ENDPOINT) return process.env
  const f = join(ROOT, 'target', 'garage', 'env')
  if (!existsSync(f)) return null
  const env = {}
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line)
    if (m) env[m[1]] = m[2]
  }
  return env
}

/**
 * Deterministic pseudo-random plaintext (AES-CTR keystream) for one suite: `data(n, seed)`
 * differs per `label` and seed, so suites sharing a bucket never write the same bytes.
 */
export function seededData(label) {
  return (n, seed = 1) => {
    const key = createHash('sha256').update(`${label}-${seed}`).digest().subarray(0, 16)
    return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n))
  }
}

/** Two fresh random KEKs, kek-a and kek-b, and `ring(states)`: a keyring of them in those states. */
export function randomKeks() {
  const KEKS = { 'kek-a': randomBytes(32), 'kek-b': randomBytes(32) }
  const ring = (states) => {
    const r = new isec.Keyring()
    for (const [kid, state] of Object.entries(states)) r.addKek(kid, KEKS[kid], state)
    return r
  }
  return { KEKS, ring }
}

/** Yields `buf` in pieces cycling through `sizes`, yielding to the event loop between them. */
export async function* chunked(buf, sizes) {
  let pos = 0
  let i = 0
  while (pos < buf.length) {
    const n = sizes[i++ % sizes.length]
    yield buf.subarray(pos, pos + n)
    pos += n
    await new Promise(setImmediate)
  }
}
