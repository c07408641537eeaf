// The upload example end to end in headless Chromium against Garage on 127.0.0.1
// (scripts/garage.sh): a 21 MiB file picked in the page is encrypted in a Worker and
// uploaded as parallel multipart parts; S3 holds ciphertext with the envelope in its
// metadata; ranged downloads fetch only their frames and decrypt; the whole object streams
// back to the file's SHA-256.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { startExample } from './server.mjs'
import { presign } from './sigv4.mjs'
import { launch } from '../../test/browser/chromium.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
let server, browser, dir, s3
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
  const env = Object.fromEntries(
    execFileSync('bash', [garage, 'env'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
  s3 = {
    endpoint: env.ISEC_S3_ENDPOINT,
    region: env.ISEC_S3_REGION,
    bucket: env.ISEC_S3_BUCKET,
    accessKeyId: env.ISEC_S3_ACCESS_KEY_ID,
    secretAccessKey: env.ISEC_S3_SECRET_ACCESS_KEY,
  }
  server = await startExample({ s3 })
  browser = await launch()
  dir = await mkdtemp(path.join(os.tmpdir(), 'isec-upload-'))
})

after(async () => {
  await browser?.close()
  await server?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
  if (startedGarage.value) execFileSync('bash', [path.join(repo, 'scripts/garage.sh'), 'stop'], { stdio: 'ignore' })
})

test('upload example: Worker encryption, parallel multipart upload, ranged download', async () => {
  const data = randomBytes(21 * 1024 * 1024 + 12345)
  const file = path.join(dir, 'photo.bin')
  await writeFile(file, data)
  const page = await browser.context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('console', (m) => console.log(`[page] ${m.text()}`))
  await page.goto(`${server.url}/examples/upload/`)
  await page.waitForFunction(() => window.isecDemo !== undefined)
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
  assert.equal(head.headers.get('x-amz-meta-isec-kid'), 'demo-kms')
  const stored = Buffer.from(await (await fetch(presign(s3, { method: 'GET', bucket: s3.bucket, key: up.key }))).arrayBuffer())
  assert.equal(stored.indexOf(data.subarray(1000, 1064)), -1, 'no plaintext in the stored object')

  // Ranged downloads: only the frames holding the range are fetched.
  for (const [a, b] of [[0, 100], [8 * 1024 * 1024 - 10, 8 * 1024 * 1024 + 10], [data.length - 5, data.length + 100], [123_456, 1_234_567]]) {
    const r = await page.evaluate(async ([k, a, b]) => {
      const r = await window.isecDemo.downloadRange(k, a, b)
      return { pt: Array.from(r.plaintext), fetched: r.fetched }
    }, [up.key, a, b])
    assert.deepEqual(Buffer.from(r.pt), data.subarray(a, Math.min(b, data.length)), `range ${a}..${b}`)
    assert.ok(r.fetched <= Math.min(b, data.length) - a + 2 * (65536 + 28), `range ${a}..${b} fetched ${r.fetched}`)
  }
  // The UI path too.
  await page.fill('#start', '5')
  await page.fill('#end', '9')
  await page.click('#download')
  await page.waitForFunction(() => document.getElementById('range').textContent.length > 0)
  assert.match(await page.textContent('#range'), new RegExp(`^4 bytes .*: ${[...data.subarray(5, 9)].map((x) => x.toString(16).padStart(2, '0')).join(' ')}\n`))

  // The whole object streamed back through DecryptStream.
  const all = await page.evaluate((k) => window.isecDemo.downloadAll(k), up.key)
  assert.equal(all.size, data.length)
  assert.equal(all.sha256, createHash('sha256').update(data).digest('hex'))
  assert.deepEqual(errors, [])
  await page.close()
})
