// Objects written by the Node package's S3 helper are read by the Python package's, and the
// other way round, through a real S3-compatible server (Garage on 127.0.0.1, started by
// scripts/garage.sh): a single-frame object and a three-part multipart object, read whole and
// over ranges that straddle frame and part boundaries. Run by scripts/test-all.sh after the
// Node and Python packages are built.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '..', '..')
const nodePkg = createRequire(join(ROOT, 'bindings-node', 'package.json'))
const sdk = nodePkg('@aws-sdk/client-s3')
const { IsecS3 } = nodePkg('./lib/s3.js')
const { Keyring } = nodePkg('./lib/index.js')
const PYTHON = join(ROOT, 'bindings-py', '.venv', 'bin', 'python')

const KEK = Uint8Array.from({ length: 32 }, (_, i) => i)
const KID = 'cross-kek'
const MiB = 1 << 20
const PART_SIZE = 5 * MiB
const OBJECTS = { single: 100_000, multipart: 12 * MiB + 12_345 }

function garageEnv() {
  if (process.env.ISEC_S3_ENDPOINT) return { ...process.env }
  const f = join(ROOT, 'target', 'garage', 'env')
  assert.ok(existsSync(f), 'no Garage env file: run bash scripts/garage.sh start')
  const env = {}
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line)
    if (m) env[m[1]] = m[2]
  }
  return env
}

/** Byte i is i mod 251: the same pattern s3_python_side.py generates. */
function plaintext(n) {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = i % 251
  return b
}

function ranges(n) {
  const out = [[0, 1], [n - 1, n], [65536 - 7, 65536 + 7], [Math.floor(n / 3), Math.floor(n / 3) + 100_000]]
  if (n > PART_SIZE) out.push([PART_SIZE - 10, PART_SIZE + 10])
  return out
}

const ENV = garageEnv()
const BUCKET = 'isec-cross'
execFileSync('bash', [join(ROOT, 'scripts', 'garage.sh'), 'bucket', BUCKET], { stdio: 'inherit' })
const s3 = new sdk.S3Client({
  endpoint: ENV.ISEC_S3_ENDPOINT,
  region: ENV.ISEC_S3_REGION,
  forcePathStyle: true,
  credentials: { accessKeyId: ENV.ISEC_S3_ACCESS_KEY_ID, secretAccessKey: ENV.ISEC_S3_SECRET_ACCESS_KEY },
})
const ring = new Keyring()
ring.addKek(KID, KEK, 'active')
const helper = new IsecS3(s3, ring, { partSize: PART_SIZE })
const run = `run-${process.pid}-${Date.now()}`

function python(mode, prefix) {
  assert.ok(existsSync(PYTHON), `${PYTHON} missing: run bash scripts/test-python.sh first`)
  const out = execFileSync(PYTHON, [join(HERE, 's3_python_side.py'), mode, prefix], {
    env: { ...process.env, ...ENV, ISEC_CROSS_BUCKET: BUCKET },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return JSON.parse(out.trim().split('\n').pop())
}

test('objects written from Node are read by Python, and objects written from Python by Node', async () => {
  // Node writes, Python reads.
  for (const [name, n] of Object.entries(OBJECTS)) {
    const put = await helper.putObject({
      Bucket: BUCKET,
      Key: `${run}/from-node/${name}`,
      Body: plaintext(n),
      Metadata: { writer: 'node' },
    })
    assert.equal(put.parts, name === 'multipart' ? 3 : 0, `${name}: parts`)
  }
  const read = python('read', `${run}/from-node`)
  assert.deepEqual(read.single, { bytes: OBJECTS.single, ranges: 4 })
  assert.deepEqual(read.multipart, { bytes: OBJECTS.multipart, ranges: 5 })

  // Python writes, Node reads.
  const wrote = python('write', `${run}/from-python`)
  assert.equal(wrote.multipart.parts, 3)
  for (const [name, n] of Object.entries(OBJECTS)) {
    const key = `${run}/from-python/${name}`
    const want = plaintext(n)
    const got = await helper.getObject({ Bucket: BUCKET, Key: key })
    assert.equal(got.Metadata.writer, 'python')
    assert.ok(Buffer.from(got.Body).equals(want), `${key}: whole object`)
    for (const [a, b] of ranges(n)) {
      const r = await helper.getRange({ Bucket: BUCKET, Key: key, start: a, end: b })
      assert.ok(Buffer.from(r.Body).equals(want.subarray(a, b)), `${key}[${a}:${b}]`)
    }
  }

  // A tampered copy fails in both, with the same code.
  const key = `${run}/from-node/single`
  const obj = await s3.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: key }))
  const body = Buffer.from(await obj.Body.transformToByteArray())
  body[body.length - 1] ^= 1
  await s3.send(
    new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `${run}/tampered/single`, Body: body, Metadata: obj.Metadata }),
  )
  await assert.rejects(helper.getObject({ Bucket: BUCKET, Key: `${run}/tampered/single` }), (e) => {
    assert.equal(e.code, 'authentication_failed')
    return true
  })
  assert.equal(python('tampered', `${run}/tampered/single`).code, 'authentication_failed')
})
