// The upload example end to end in headless Chromium against Garage on 127.0.0.1
// (scripts/garage.sh): the page gets the recipient's PUBLIC key from the backend and nothing
// else; a 21 MiB file picked in the page is encrypted in a Worker to that key and uploaded as
// parallel multipart parts; S3 holds ciphertext with the envelope in its metadata. The page
// cannot read back what it uploaded (`public_key_only`), and the backend has no endpoint that
// unwraps. Then the Python package (bindings-py) reads the same object with the private key
// from the keyring file the backend wrote: a plain SigV4 GET, the whole object and byte
// ranges decrypted (read_back.py), equal to the file's bytes.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { existsSync, readdirSync } from 'node:fs'
import { promisify } from 'node:util'

import { startExample } from './server.mjs'
import { presign } from './sigv4.mjs'
import { launch } from '../../test/browser/chromium.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.resolve(here, '../../..')
// This suite's own bucket on the shared server (scripts/garage.sh bucket).
const BUCKET = process.env.ISEC_WASM_BUCKET ?? 'isec-wasm'
// The Python package's interpreter (scripts/test-python.sh builds it into this venv).
const PYTHON = process.env.ISEC_PYTHON ?? path.join(repo, 'bindings-py/.venv/bin/python')
let server, browser, dir, s3, garageEnv
const startedGarage = { value: false }

before(async () => {
  const garage = path.join(repo, 'scripts/garage.sh')
  const status = () => {
    try {
      execFileSync('bash', [garage, 'status'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }
  if (!status()) {
    execFileSync('bash', [garage, 'start'], { stdio: ['ignore', 'ignore', 'inherit'] })
    startedGarage.value = true
  }
  execFileSync('bash', [garage, 'bucket', BUCKET], { stdio: ['ignore', 'ignore', 'inherit'] })
  const env = (garageEnv = Object.fromEntries(
    execFileSync('bash', [garage, 'env'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ))
  s3 = {
    endpoint: env.ISEC_S3_ENDPOINT,
    region: env.ISEC_S3_REGION,
    bucket: BUCKET,
    accessKeyId: env.ISEC_S3_ACCESS_KEY_ID,
    secretAccessKey: env.ISEC_S3_SECRET_ACCESS_KEY,
  }
  dir = await mkdtemp(path.join(os.tmpdir(), 'isec-upload-'))
  server = await startExample({ s3, keyringFile: path.join(dir, 'recipient.keyring.json') })
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await server?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
  if (startedGarage.value) execFileSync('bash', [path.join(repo, 'scripts/garage.sh'), 'stop'], { stdio: 'ignore' })
})

test('upload example: public key only in the page, parallel multipart upload, no read-back but with the private key', async () => {
  // The backend hands out the public key and nothing that decrypts.
  const rcpt = await (await fetch(`${server.url}/api/recipient`)).json()
  assert.deepEqual(Object.keys(rcpt).sort(), ['kid', 'publicKey'])
  assert.equal(rcpt.kid, 'upload-recipient')
  assert.match(rcpt.publicKey, /^isec-x25519-public:[\w-]{43}$/)
  for (const p of ['/api/kms/unwrap', '/api/kms/wrap', '/api/unwrap', '/api/keyring']) {
    const r = await fetch(`${server.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"kid":"upload-recipient","data":"AA"}' })
    assert.equal(r.status, 404, `POST ${p}`)
  }
  assert.equal((await fetch(`${server.url}/api/recipient`, { method: 'POST', body: '{}' })).status, 404)
  // The private key is in the keyring file only, readable by its owner alone.
  assert.equal((await stat(server.keyringFile)).mode & 0o777, 0o600)
  assert.match(await readFile(server.keyringFile, 'utf8'), /"private_key": "isec-x25519-private:/)

  const data = randomBytes(21 * 1024 * 1024 + 12345)
  const file = path.join(dir, 'photo.bin')
  await writeFile(file, data)
  const page = await browser.context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('console', (m) => console.log(`[page] ${m.text()}`))
  await page.goto(`${server.url}/examples/upload/`)
  await page.waitForFunction(() => window.isecDemo !== undefined)
  assert.deepEqual(
    await page.evaluate(() => window.isecDemo.keys().map((k) => [k.kid, k.kind, k.state, k.publicKey])),
    [['upload-recipient', 'public_key', 'active', rcpt.publicKey]],
  )
  await page.setInputFiles('#file', file)
  await page.click('#upload')
  await page.waitForFunction(() => window.__lastUpload !== undefined, null, { timeout: 300_000 })
  const up = await page.evaluate(() => window.__lastUpload)
  assert.equal(up.error, undefined, up.error)
  console.log(`uploaded ${up.size} bytes as ${up.parts} parts of ${up.partSize} in ${Math.round(up.ms)} ms`)
  assert.equal(up.size, data.length)
  assert.equal(up.parts, 3)
  assert.equal(await page.evaluate(() => document.getElementById('bar').value === document.getElementById('bar').max), true)

  // What S3 holds: ciphertext of the expected length, the envelope in its metadata.
  const head = await fetch(presign(s3, { method: 'HEAD', bucket: s3.bucket, key: up.key }), { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(Number(head.headers.get('content-length')), up.ciphertextSize)
  assert.equal(head.headers.get('x-amz-meta-isec'), up.envelope)
  assert.equal(head.headers.get('x-amz-meta-isec-kid'), 'upload-recipient')
  const stored = Buffer.from(await (await fetch(presign(s3, { method: 'GET', bucket: s3.bucket, key: up.key }))).arrayBuffer())
  assert.equal(stored.indexOf(data.subarray(1000, 1064)), -1, 'no plaintext in the stored object')

  // The page cannot read back its own upload: every path stops at the envelope.
  const refused = await page.evaluate(async (k) => {
    const codeOf = async (p) => p.then(() => null, (e) => e.code ?? String(e))
    return {
      range: await codeOf(window.isecDemo.downloadRange(k, 0, 100)),
      all: await codeOf(window.isecDemo.downloadAll(k)),
    }
  }, up.key)
  assert.deepEqual(refused, { range: 'public_key_only', all: 'public_key_only' })
  // The UI path too.
  await page.fill('#objkey', up.key)
  await page.click('#download')
  await page.waitForFunction(() => window.__lastDownload !== undefined)
  assert.equal(await page.evaluate(() => window.__lastDownload.code), 'public_key_only')
  assert.match(await page.textContent('#range'), /^failed: public_key_only /)
  assert.deepEqual(errors, [])
  await page.close()

  // The Python package reads the object the browser wrote, with the private key from the
  // keyring file the backend wrote (the only place it is).
  const out = path.join(dir, 'python')
  const ranges = [[0, 1], [0, 100], [8 * 1024 * 1024 - 10, 8 * 1024 * 1024 + 10], [123_456, 1_234_567], [data.length - 5, data.length], [data.length - 70_000, data.length + 100]]
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [
      path.join(here, 'read_back.py'),
      '--bucket', BUCKET,
      '--key', up.key,
      '--keyring', server.keyringFile,
      '--out', out,
      ...ranges.flatMap(([a, b]) => ['--range', `${a}:${b}`]),
    ],
    { encoding: 'utf8', env: { ...process.env, ...garageEnv }, maxBuffer: 1 << 20 },
  )
  const py = JSON.parse(stdout)
  console.log(`python isec ${py.isec}: read ${py.ciphertext_len} stored bytes, ${py.ranges.length} ranges`)
  assert.equal(py.kid, 'upload-recipient')
  assert.equal(py.kid_meta, 'upload-recipient')
  assert.equal(py.wrap_alg, 'hpke-x25519')
  assert.equal(py.layout, 'parts')
  assert.equal(py.ciphertext_len, up.ciphertextSize)
  assert.equal(py.plaintext_len, data.length)
  assert.ok((await readFile(path.join(out, 'whole.bin'))).equals(data), 'python: whole object')
  assert.ok((await readFile(path.join(out, 'stream.bin'))).equals(data), 'python: streamed object')
  for (const [i, [a, b]] of ranges.entries()) {
    const want = data.subarray(a, Math.min(b, data.length))
    const got = await readFile(path.join(out, `range-${a}-${b}.bin`))
    assert.ok(got.equals(want), `python: range ${a}..${b}`)
    assert.equal(py.ranges[i].len, want.length)
    assert.ok(py.ranges[i].fetched <= want.length + 2 * (65536 + 28), `python: range ${a}..${b} fetched ${py.ranges[i].fetched}`)
  }

  // The Node package reads it too, with the same keyring file, through its S3 helper (built by
  // scripts/test-node.sh, which scripts/test-all.sh runs first).
  const nodeDir = path.join(repo, 'bindings-node')
  const built = existsSync(path.join(nodeDir, 'node_modules/@aws-sdk/client-s3')) &&
    readdirSync(nodeDir).some((f) => f.endsWith('.node'))
  if (!built) {
    assert.notEqual(process.env.CI, 'true', 'CI: the Node package must be built before this test')
    console.log('skipped the Node read-back: bindings-node is not built')
    return
  }
  const nodePkg = createRequire(path.join(nodeDir, 'package.json'))
  const { Keyring } = nodePkg('./lib/index.js')
  const { IsecS3 } = nodePkg('./lib/s3.js')
  const { S3Client } = nodePkg('@aws-sdk/client-s3')
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  })
  const reader = new IsecS3(client, Keyring.fromFileText(await readFile(server.keyringFile)))
  const whole = await reader.getObject({ Bucket: BUCKET, Key: up.key })
  assert.equal(whole.kid, 'upload-recipient')
  assert.ok(whole.Body.equals(data), 'node: whole object')
  for (const [a, b] of ranges) {
    const r = await reader.getRange({ Bucket: BUCKET, Key: up.key, start: a, end: b })
    assert.ok(r.Body.equals(data.subarray(a, Math.min(b, data.length))), `node: range ${a}..${b}`)
  }
  // A Node writer holding only the public key is refused the same way the page is.
  const pub = new Keyring()
  pub.addPublicKey('upload-recipient', Keyring.fromFileText(await readFile(server.keyringFile)).keys()[0].publicKey)
  await assert.rejects(new IsecS3(client, pub).getObject({ Bucket: BUCKET, Key: up.key }), (e) => e.code === 'public_key_only')
  client.destroy()
})
